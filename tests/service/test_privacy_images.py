"""Researcher images: burned-in text inside the fan is found by OCR and blacked out; without a
verified clean result nothing is shown."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livus.service import privacy

FAN = [[20, 10], [300, 10], [300, 230], [20, 230]]


def _frame_with_name() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(40, 90, (240, 320), dtype=np.uint8)
    cv2.putText(img, "SMITH FANG", (60, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    return img


def test_name_inside_the_fan_is_blacked_out() -> None:
    from livus.report.ocr import OcrUnavailable, TextReader

    img = _frame_with_name()
    try:
        reader = TextReader()
    except OcrUnavailable as exc:
        pytest.skip(f"OCR engine not available: {exc}")
    assert any("SMITH" in b.text.upper() for b in reader.read(img)), "the test text must be readable before"
    out = privacy.deidentify_image(img, FAN)
    assert not any("SMITH" in b.text.upper() or "FANG" in b.text.upper() for b in reader.read(out))
    assert out.any(), "the echo data around the text is kept"


def test_no_ocr_means_nothing_is_shown(monkeypatch) -> None:
    import livus.report.redact_pixels as rp

    def broken(*a, **k):
        raise RuntimeError("OCR engine missing")

    monkeypatch.setattr(rp, "redact_burned_in_text", broken)
    assert not privacy.deidentify_image(_frame_with_name(), FAN).any()
