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


def _english_words(strings: list[str]) -> set[str]:
    """Latin words of 3+ letters, less the names and abbreviations a Chinese report keeps."""
    keep = {"CEUS", "AFP", "HBV", "HCV", "MRI", "mm", "px", "Grad", "CAM", "AUL", "Zenodo", "Xu", "livus", "detector",
            "dcm", "png", "avi", "case", "RADS", "ACR"}  # LI-RADS, the ACR's name, stays
    return {w for s in strings for w in re.findall(r"[A-Za-z]{3,}", s)} - keep


def test_zh_report_has_no_english_warnings(tmp_path):
    from livus.infer.case import assess_case
    from livus.types import Assessability

    result = make_result(spacing=None)
    result.quality = {"verdict": "heavily_shadowed", "ok": False, "reason": "A large part ...",
                      "reason_zh": "扫描扇区的大部分为声影（肋骨或气体遮挡），其中的病灶无法显示。"}
    result.warnings = ["pixel spacing unknown: sizes in pixels only", "no fan found: using the whole image",
                       "colour (Doppler) overlay present: colour pixels ignored",
                       "low-quality frame (heavily_shadowed): A large part of the imaged sector is acoustic shadow",
                       "no lesion classifier model found: malignancy not assessed"]
    base = make_case(result)
    case = assess_case("case-001", base.tracks, base.patient, language="zh",
                       assessability=Assessability("limited", ["shadowing"]))
    case.warnings.append(_clip_warning_zh())
    c = build_report_content(case, [result], {}, "zh")
    strings = c.warnings + c.reasons + list(c.labels.values()) + [c.priority, c.follow_up, c.assessability, c.risk]
    assert not _english_words(strings), _english_words(strings)
    assert c.assessability == "评估受限（声影遮挡）" and c.follow_up == "2周"
    assert any("低质量帧（声影遮挡严重）" in w for w in c.warnings)
    html = render_report(case, [result], {}, tmp_path, "zh")["html"].read_text(encoding="utf-8")
    for english in result.warnings + ["low-quality", "frame(s)", "months", "limited"]:
        assert english not in html, english
    assert 'id="assessability">评估受限（声影遮挡）<' in html


def _clip_warning_zh() -> str:
    from livus.infer.case_notes import clip_quality_warning
    from livus.infer.input_analysis import InputAnalysis

    item = InputAnalysis(path="/x/s1.avi", is_clip=True, clip_quality={"ok": 8, "liver_not_in_view": 2})
    return clip_quality_warning(item, "zh")


def test_not_assessable_case_report_says_so_in_both_languages(tmp_path):
    from livus.infer.case import assess_case
    from livus.types import Assessability

    result = make_result()
    result.lesions = []
    case = assess_case("case-002", [], language="en", assessability=Assessability("not_assessable", ["not_liver"]))
    c = build_report_content(case, [result], {}, "en")
    assert c.priority == "not assessable" and c.follow_up == "not assessed" and c.risk == "not assessed"
    assert c.reasons[0].startswith("not assessable: repeat the examination / check the input")
    assert c.labels["no_lesion"].startswith("The images are not assessable")
    out = render_report(case, [result], {}, tmp_path, "en")
    html = out["html"].read_text(encoding="utf-8")
    assert "No lesion detected" not in html and "does not show the liver" in html
    text = _pdf_text(out["pdf"]).replace("\n", " ")
    assert "repeat the examination" in text and "No lesion detected" not in text


@pytest.mark.parametrize("months,en,zh", [(0.5, "2 weeks", "2周"), (0.25, "1 week", "1周"), (1, "1 month", "1个月"),
                                          (3, "3 months", "3个月"), (12, "12 months", "12个月"), (0, "immediately", "立即")])
def test_follow_up_units_and_plurals(months, en, zh, frame_result):
    case = make_case(frame_result)
    case.follow_up_months = months
    assert build_report_content(case, [frame_result], {}, "en").follow_up == en
    assert build_report_content(case, [frame_result], {}, "zh").follow_up == zh


@pytest.mark.parametrize("language,words", [("zh", "本院设定的报告阈值 0.650"), ("en", "site-set report threshold 0.650")])
def test_report_names_a_site_set_report_threshold(frame_result, language, words):
    case = make_case(frame_result)
    case.model = {**case.model, "report_threshold": "0.650"}
    assert build_report_content(case, [frame_result], {}, language).model.endswith(words)
    assert "0.650" not in build_report_content(make_case(frame_result), [frame_result], {}, language).model


def test_model_line_does_not_repeat_a_name_the_version_carries(frame_result):
    case = make_case(frame_result)
    case.model = {"name": "livus-detector", "version": "livus-detector-20261206-lite0-r2"}
    assert build_report_content(case, [frame_result], {}, "en").model == "livus-detector-20261206-lite0-r2"
    case.model = {"name": "livus-detector", "version": "0.1.0"}
    assert build_report_content(case, [frame_result], {}, "en").model == "livus-detector 0.1.0"
