"""LI-RADS in the zh/en reports (HTML, PDF) and the DICOM SR."""

from __future__ import annotations

import pydicom
import pytest
from fontTools.ttLib import TTFont
from report_factories import make_case, make_frame, make_result, make_us_dicom

from livus.infer.lirads_case import lirads_for_case
from livus.infer.lirads_table import load_lirads_table
from livus.report import render_report
from livus.report.content import build_report_content
from livus.report.dicom_sr import LIVUS_SCHEME, build_measurement_sr, write_measurement_sr
from livus.report.fonts import cjk_font_path
from livus.types import LesionTrack, PatientBackground

HCC = {"arterial_phase_hyperenhancement": 0.97, "washout_none": 0.3, "washout_late": 0.66, "washout_early": 0.04,
       "capsule_enhancement": 0.4}


def _case(with_ceus=True, patient=None):
    r = make_result()
    r.quality = {"verdict": "ok", "ok": True, "measures": {"shadow_share": 0.01, "band_to_near": 0.9}}
    case = make_case(r)
    if patient is not None:
        case.patient = patient
    ceus = [LesionTrack(3, "clip.avi", long_axis_mm=22.0, ceus_features=HCC)] if with_ceus else None
    case.lirads = lirads_for_case(case.patient, [r], case.tracks, ceus, language="zh")
    return case, r


def test_zh_rows_use_the_chinese_terms_and_the_acr_name():
    case, r = _case()
    rows = build_report_content(case, [r], {}, "zh").lirads
    text = " ".join(k + v for k, v in rows)
    for term in ("美国放射学会（ACR）超声 LI-RADS v2017", "超声造影 LI-RADS v2017", "US-3 阳性", "可视化评分",
                 "LR-5 肯定为肝细胞癌（低可信度）", "动脉期高增强", "廓清", "由软件自动分类，须经阅片医师确认",
                 "多期增强CT或MRI", "若廓清为无（概率 0.30）则为 LR-4", "按非环状计"):
        assert term in text, term
    import re

    assert set(re.findall(r"[A-Za-z]{3,}", text)) <= {"ACR", "RADS", "CEUS", "MRI"}


def test_en_rows():
    case, r = _case()
    rows = build_report_content(case, [r], {}, "en").lirads
    text = " ".join(k + " " + v for k, v in rows)
    for term in ("ACR US LI-RADS v2017", "ACR CEUS LI-RADS v2017", "US-3 positive", "Visualization score",
                 "A: no or minimal limitations", "LR-5 definitely HCC (low confidence)",
                 "LR-4 if washout were none (p 0.30)", "assigned by software, to be confirmed by the reader"):
        assert term in text, term
    assert rows[-1] == ("Note", "assigned by software, to be confirmed by the reader")


def test_not_applicable_and_no_lirads():
    case, r = _case(with_ceus=False, patient=PatientBackground())
    rows = build_report_content(case, [r], {}, "zh").lirads
    assert rows[0][1].startswith("不适用：患者无已知肝细胞癌高危因素")
    case.lirads = None
    assert build_report_content(case, [r], {}, "zh").lirads == []


def test_html_and_pdf_carry_the_lirads_section(tmp_path):
    from pypdf import PdfReader

    case, r = _case()
    files = render_report(case, [r], {}, tmp_path, "zh")
    html = files["html"].read_text(encoding="utf-8")
    assert 'id="lirads"' in html and "LI-RADS 分类" in html and "US-3 阳性" in html
    pdf_text = "".join(p.extract_text() for p in PdfReader(files["pdf"]).pages).replace("\x00", "").replace("\n", "")
    assert "LI-RADS" in pdf_text and "US-3" in pdf_text and "LR-5" in pdf_text
    case.lirads = None
    assert 'id="lirads"' not in render_report(case, [r], {}, tmp_path / "none", "en")["html"].read_text(encoding="utf-8")


def test_font_covers_the_lirads_table():
    cmap = TTFont(str(cjk_font_path())).getBestCmap()
    table = load_lirads_table()
    chars = {c for m in table.management.values() for s in m.action.values() for c in s}
    assert not sorted(c for c in chars if ord(c) not in cmap)


def _codes(sr):
    out = []

    def walk(items):
        for item in items:
            if "ConceptCodeSequence" in item:
                out.append((item.ConceptNameCodeSequence[0].CodeValue, item.ConceptCodeSequence[0].CodeValue,
                            item.ConceptCodeSequence[0].CodingSchemeDesignator))
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(sr.ContentSequence)
    return out


def test_sr_carries_the_lirads_codes(tmp_path, frame_grey):
    case, r = _case()
    sr = pydicom.dcmread(write_measurement_sr(make_us_dicom(frame_grey), r, tmp_path / "sr.dcm", lirads=case.lirads))
    codes = _codes(sr)
    assert ("LIRADS-US-CAT", "US-3", LIVUS_SCHEME) in codes and ("LIRADS-US-VIS", "VIS-A", LIVUS_SCHEME) in codes
    # the still's lesions are no CEUS observation: they carry the case's CEUS category
    assert ("LIRADS-CEUS-CASE", "LR-5", LIVUS_SCHEME) in codes and not any(c[0] == "LIRADS-CEUS-CAT" for c in codes)
    plain = pydicom.dcmread(write_measurement_sr(make_us_dicom(frame_grey), r, tmp_path / "plain.dcm"))
    assert not any(c[0].startswith("LIRADS") for c in _codes(plain))


@pytest.mark.parametrize("patient,value", [(PatientBackground(), "not-applicable"),
                                           (PatientBackground(hbv=True), "not-categorised")])
def test_sr_states_when_there_is_no_category(patient, value):
    r = make_result(spacing=None)
    case = make_case(r)
    case.lirads = lirads_for_case(patient, [r], case.tracks, None)
    sr = build_measurement_sr(make_us_dicom(make_frame()), r, case.lirads)
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.ContentSequence = sr.ContentSequence
    assert ("LIRADS-US-CAT", value, LIVUS_SCHEME) in _codes(ds)


def test_what_was_not_measured_names_its_observations():
    """Rim APHE measured on observation 1, not on observation 2 (too small): only 2 is listed."""
    measured = dict(HCC, rim_arterial_phase_hyperenhancement=0.03, washout_marked=0.01)
    ceus = [LesionTrack(1, "clip.avi", long_axis_mm=22.0, ceus_features=measured),
            LesionTrack(2, "clip.avi", long_axis_mm=8.0, ceus_features=dict(HCC, washout_marked=0.01))]
    lirads = lirads_for_case(PatientBackground(cirrhosis=True), [], [], ceus, language="en")
    from livus.report.lirads_text import lirads_rows

    rows = dict(lirads_rows(lirads, "en"))
    assert rows["Not measured"] == "rim vs non-rim APHE not measured (taken as non-rim) (observation 2)"
    assert "rim APHE absent 0.97" in rows["observation 1"]
    zh = dict(lirads_rows(lirads, "zh"))
    assert zh["未测量的征象"] == "未区分环状与非环状动脉期高增强（按非环状计）（病灶2）"
