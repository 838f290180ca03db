from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from report_factories import make_case, make_result

from livus.report import render_report
from livus.report.content import build_report_content, coarse_location
from livus.report.overlay import draw_overlay, write_overlay_png


@pytest.fixture
def overlay_png(tmp_path, frame_grey, frame_result) -> Path:
    return write_overlay_png(tmp_path / "ov.png", draw_overlay(frame_grey, frame_result))


def _pdf_text(path: Path) -> str:
    """Text of all pages; pypdf reads fpdf2's 2-byte ToUnicode entries with a NUL before each
    character (poppler's pdftotext does not), so NULs are dropped."""
    return "".join(page.extract_text() for page in PdfReader(str(path)).pages).replace("\x00", "")


def test_coarse_location_thirds():
    assert coarse_location((10, 10), (300, 300)) == "upper-left"
    assert coarse_location((150, 150), (300, 300)) == "middle-centre"
    assert coarse_location((299, 299), (300, 300)) == "lower-right"


def test_html_zh_has_lesion_values_terms_and_disclaimer(tmp_path, case_result, frame_result, overlay_png):
    out = render_report(case_result, [frame_result], {(frame_result.source, 0): overlay_png}, tmp_path, "zh")
    html = out["html"].read_text(encoding="utf-8")
    assert out["html"].name == "report_case-001_zh.html"
    # lesion table values: 52 × 44 px at 0.25 mm/px → 13.0 × 11.0 mm
    for value in ("13.0 mm", "11.0 mm", "0.83", "0.91", "(120, 110)", "图像中央", "低回声 0.90", "晕环 0.70"):
        assert value in html, value
    for term in ("恶性概率", "长径", "短径", "病灶", "随访", "紧急", "未评估"):
        assert term in html, term
    assert "Zenodo 7272660" in html and "CC BY 4.0" in html and "不是诊断结论" in html and "未经临床使用验证" in html
    assert re.search(r'id="n-lesions">2<', html)
    assert "data:image/png;base64," in html  # thumbnail embedded
    assert "PATIENT_SECRET" not in html  # only the file name of the source is shown


def test_html_en_disclaimer_and_not_assessed(tmp_path, frame_result):
    case = make_case(frame_result, assessed=False)
    html = render_report(case, [frame_result], {}, tmp_path, "en")["html"].read_text(encoding="utf-8")
    assert "decision support, not a diagnosis" in html and "not validated for clinical use" in html
    assert "AUL" in html and "simulated images" in html
    assert html.count("not assessed") >= 4  # lesion 2 malignancy, risk, priority, follow-up, reasons
    assert "hypoechoic 0.90" in html and "livus-detector 0.1.0" in html


def test_px_sizes_when_spacing_unknown(tmp_path):
    result = make_result(spacing=None)
    content = build_report_content(make_case(result), [result], {}, "en")
    assert content.lesions[0].long_axis == "52 px" and content.any_size_in_px
    assert any("pixel spacing unknown" in w for w in content.warnings)


def test_lesions_from_frames_when_no_tracks(tmp_path, frame_result):
    case = make_case(frame_result)
    case.tracks = []
    content = build_report_content(case, [frame_result], {}, "zh")
    assert [r.number for r in content.lesions] == [1, 2]
    assert content.lesions[1].location == "图像右下部"


def test_pdf_embeds_font_and_chinese_text(tmp_path, case_result, frame_result, overlay_png, artifacts_dir):
    out = render_report(case_result, [frame_result], {(frame_result.source, 0): overlay_png}, artifacts_dir, "zh")
    data = out["pdf"].read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/FontFile" in data  # the font program is embedded (FontFile2 or FontFile3)
    text = _pdf_text(out["pdf"])
    for term in ("恶性概率", "长径", "短径", "病灶", "随访", "低回声", "晕环", "13.0 mm", "Zenodo 7272660", "不是诊断结论"):
        assert term in text, term


def test_pdf_english(tmp_path, frame_result):
    out = render_report(make_case(frame_result, assessed=False), [frame_result], {}, tmp_path, "en")
    text = _pdf_text(out["pdf"])
    assert "not a diagnosis" in text and "not assessed" in text and "Long axis" in text


def test_no_lesion_case(tmp_path):
    result = make_result()
    result.lesions = []
    out = render_report(make_case(result), [result], {}, tmp_path, "zh")
    assert "未检出病灶" in out["html"].read_text(encoding="utf-8")
    assert out["pdf"].read_bytes().startswith(b"%PDF")


def test_unknown_language_is_an_error(tmp_path, case_result, frame_result):
    with pytest.raises(ValueError, match="language"):
        render_report(case_result, [frame_result], {}, tmp_path, "fr")
