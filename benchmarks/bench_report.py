"""Timing of the result outputs on synthetic data: overlay, report (HTML+PDF), DICOM SR, export.

Run: ``.venv/bin/python benchmarks/bench_report.py`` — prints milliseconds per call (single
thread). Uses the report tests' synthetic frames (no real data).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))
from report_factories import make_case, make_frame, make_result, make_us_dicom  # noqa: E402

from livus.report import render_report  # noqa: E402
from livus.report.deidentify import deidentify_path  # noqa: E402
from livus.report.dicom_sr import write_measurement_sr  # noqa: E402
from livus.report.overlay import draw_overlay, write_overlay_png  # noqa: E402


def _ms(fn, n: int) -> float:
    fn()  # warm-up (fonts, templates)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000.0


def main() -> None:
    cv2.setNumThreads(1)
    w, h = 1024, 768
    img, result = make_frame(w, h), make_result(w, h)
    heat = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    print(f"overlay {w}x{h}, 2 lesions:            {_ms(lambda: draw_overlay(img, result), 20):7.1f} ms")
    print(f"overlay + Grad-CAM panel:              {_ms(lambda: draw_overlay(img, result, heat), 20):7.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ov = write_overlay_png(out / "ov.png", draw_overlay(img, result))
        case = make_case(result)
        for lang in ("zh", "en"):
            ms = _ms(lambda: render_report(case, [result], {(result.source, 0): ov}, out, lang), 5)
            print(f"report HTML+PDF ({lang}):                 {ms:7.1f} ms")
        ds = make_us_dicom(img)
        print(f"DICOM SR (TID 1500):                   {_ms(lambda: write_measurement_sr(ds, result, out / 'sr.dcm'), 10):7.1f} ms")
        src = out / "src"
        src.mkdir()
        for i in range(5):
            make_us_dicom(make_frame(w, h, seed=i)).save_as(src / f"{i}.dcm", enforce_file_format=True)
        ms = _ms(lambda: deidentify_path(src, out / "export", key="bench"), 3) / 5
        print(f"de-identified export per DICOM {w}x{h}: {ms:7.1f} ms")


if __name__ == "__main__":
    main()
