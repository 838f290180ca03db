"""Burned-in identity in exported pixels (issue 15): name, ID and date printed outside the fan
and inside it, in grey PNGs, livus overlays (with the Grad-CAM panel), RGB, YBR and PALETTE
COLOR DICOMs; after a de-identified export the OCR reads none of them, and what could not be
verified clean is withheld or marked, never declared clean."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from deid_images import PHI_TOKENS, frame_with_phi, readable_phi
from pydicom.pixels import convert_color_space
from report_factories import make_result

from livus.io.dicom_write import write_us_dicom
from livus.report.deidentify import deidentify_path
from livus.report.ocr import TextReader
from livus.report.overlay import draw_overlay
from livus.report.redact_pixels import RedactParams

KEY = "site-key-for-tests"
PATIENT = {"name": "SMITH^FANG", "id": "SIM00003", "birth_date": "19610304"}
CLEAN_PIXEL_CODE = "113101"


def _dicom(path: Path, frame: np.ndarray, frames: int = 1) -> pydicom.Dataset:
    write_us_dicom(path, [frame] * frames, (0.1, 0.1), PATIENT)
    return pydicom.dcmread(path)


def _as_rgb(ds: pydicom.Dataset, rgb: np.ndarray, photometric: str = "RGB") -> None:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    data = np.stack([rgb] * n) if n > 1 else rgb
    if photometric != "RGB":
        data = convert_color_space(data, "RGB", photometric)
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = photometric
    ds.PixelData = np.ascontiguousarray(data).tobytes()


def _as_palette(ds: pydicom.Dataset) -> None:
    """PALETTE COLOR: the grey values index a 16-bit LUT (a warm ramp, so R, G, B differ)."""
    ramp = np.arange(256, dtype=np.float64) / 255.0
    for k, curve in enumerate((ramp, ramp ** 1.2, ramp ** 1.5)):  # red, green, blue
        ds.add_new((0x0028, 0x1101 + k), "US", [256, 0, 16])
        ds.add_new((0x0028, 0x1201 + k), "OW", (curve * 65535).astype("<u2").tobytes())
    ds.PhotometricInterpretation = "PALETTE COLOR"


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, reader):
    src = tmp_path_factory.mktemp("src")
    frame = frame_with_phi()
    rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    cv2.imwrite(str(src / "scan.png"), frame)
    h, w = frame.shape
    result = make_result(width=w, height=h, spacing=(0.1, 0.1))
    for lesion in result.lesions:  # into the fan, a label box over the burned-in CJK name
        lesion.center_px = (lesion.center_px[0] + 160, lesion.center_px[1] + 200)
        lesion.polygon_px = [[x + 160, y + 200] for x, y in lesion.polygon_px]
    heat = np.zeros((h, w), np.float32)
    heat[150:350, 200:400] = 1.0
    overlay = draw_overlay(frame, result, heatmap=cv2.GaussianBlur(heat, (0, 0), 40), language="zh")
    cv2.imwrite(str(src / "overlay_scan_0000.png"), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    _dicom(src / "grey.dcm", frame)  # MONOCHROME2, as scanners write B-mode
    colour = _dicom(src / "rgb.dcm", frame, frames=2)
    _as_rgb(colour, rgb)
    colour.save_as(src / "rgb.dcm")
    ybr = _dicom(src / "ybr.dcm", frame)
    _as_rgb(ybr, rgb, "YBR_FULL")
    ybr.save_as(src / "ybr.dcm")
    palette = _dicom(src / "palette.dcm", frame)
    _as_palette(palette)
    palette.save_as(src / "palette.dcm")
    sources = {"frame": frame, "overlay": overlay, "palette": palette.pixel_array}
    report = deidentify_path(src, tmp_path_factory.mktemp("out") / "export", key=KEY)
    return src, report, sources


def test_phi_readable_before_export(exported, reader):
    _, _, sources = exported
    assert readable_phi(sources["frame"], reader) == set(PHI_TOKENS)  # the check can fail
    assert {"SMITH", "SIM00003"} <= readable_phi(sources["overlay"], reader)


def test_no_phi_readable_in_any_exported_image(exported, reader):
    _, report, _ = exported
    assert not report.skipped and not report.not_clean, report.summary_text()
    images = [p for p in report.written if p.suffix == ".png"]
    dicoms = [p for p in report.written if p.suffix == ".dcm"]
    assert len(images) == 2 and len(dicoms) == 4
    for path in images:
        assert readable_phi(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), reader) == set(), path.name
    for path in dicoms:
        ds = pydicom.dcmread(path)
        assert ds.BurnedInAnnotation == "NO", path.name
        pixels = ds.pixel_array
        for frame in (pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[None]):
            assert readable_phi(frame, reader) == set(), path.name


def test_colour_and_palette_dicoms_written_as_rgb_and_declared_clean(exported):
    _, report, sources = exported
    by_name = {p.name: pydicom.dcmread(p) for p in report.written if p.suffix == ".dcm" and p.name != "grey.dcm"}
    assert set(by_name) == {"rgb.dcm", "ybr.dcm", "palette.dcm"}
    for name, ds in by_name.items():
        assert ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3, name
        assert ds.BitsAllocated == 8 and "RedPaletteColorLookupTableData" not in ds
        assert ds.BurnedInAnnotation == "NO"
        assert CLEAN_PIXEL_CODE in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
        assert any("OCR-verified" in line for line in ds.DeidentificationMethod)
    palette = by_name["palette.dcm"].pixel_array
    grey = sources["frame"]
    fan = (slice(300, 380), slice(200, 440))  # echo below the burned-in lines
    # the LUT was applied: red follows the grey value, blue is darker (ramp ** 1.5)
    assert np.abs(palette[fan][..., 0].astype(int) - grey[fan]).max() <= 1
    assert palette[fan][..., 2].mean() < palette[fan][..., 0].mean()
    assert by_name["rgb.dcm"].NumberOfFrames == 2


def test_echo_data_kept_and_overlay_labels_removed(exported, reader):
    _, report, sources = exported
    grey = sources["frame"]
    out = cv2.imread(str(next(p for p in report.written if p.name.startswith("src-") or p.name == "scan.png")),
                     cv2.IMREAD_GRAYSCALE)
    fan = grey > 0
    fan[:, :160] = False  # the scanner text block left of the fan
    changed = np.mean(out[fan] != grey[fan])
    assert changed < 0.08, f"{changed:.1%} of the fan blacked out"
    overlay = next(p for p in report.written if "overlay" in p.name)
    lines = reader.read(cv2.imread(str(overlay)))
    # labels go too: scanner text under their half-transparent boxes (王伟 here) stays visible
    assert not [line.text for line in lines if line.score >= 0.5 and len(line.text.strip()) >= 2]


def test_not_verified_clean_is_withheld_or_marked(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    frame = frame_with_phi()
    cv2.imwrite(str(src / "scan.png"), frame)
    _dicom(src / "scan.dcm", frame)
    no_ocr = RedactParams(ocr=False)
    report = deidentify_path(src, tmp_path / "a", key=KEY, params=no_ocr)
    assert not report.written and len(report.skipped) == 2
    assert all("withheld" in why for _, why in report.skipped)
    assert "no image can be verified clean" in report.summary_text()
    marked = deidentify_path(src, tmp_path / "b", key=KEY, params=no_ocr, write_uncertain=True)
    assert len(marked.written) == 2 and len(marked.not_clean) == 2
    assert "NOT de-identified in the pixels" in marked.summary_text()
    ds = pydicom.dcmread(tmp_path / "b" / "scan.dcm")
    assert ds.BurnedInAnnotation == "YES"
    assert CLEAN_PIXEL_CODE not in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
    assert any("NOT" in line for line in ds.DeidentificationMethod)


class _FailingReader:
    def read(self, image):
        from livus.report.ocr import OcrUnavailable

        raise OcrUnavailable("OCR failed (test)")


class _StubbornReader:
    """Always reads a line that no blacking out removes."""

    def read(self, image):
        from livus.report.ocr import TextBox

        return [TextBox(np.array([[0, 0], [30, 0], [30, 10], [0, 10]], np.float32), "SMITH", 0.99)]


def test_ocr_failure_or_text_left_is_never_clean():
    from livus.report.redact_pixels import redact_burned_in_text

    frame = frame_with_phi()
    failed = redact_burned_in_text(frame, reader=_FailingReader())
    assert not failed.clean and "OCR failed" in failed.note
    stubborn = redact_burned_in_text(frame, reader=_StubbornReader())
    assert not stubborn.clean and "still readable" in stubborn.note
