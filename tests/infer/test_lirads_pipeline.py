"""LI-RADS through ``livus analyze``: case.json, summary.csv, reports and DICOM SR (a tiny
untrained detector: the tests check the plumbing, not the categories' accuracy)."""

from __future__ import annotations

import csv
import json

import pydicom
from test_pipeline import _fan_image, tiny_model_dir  # noqa: F401 - shared fixture

from livus.infer.pipeline import analyze_paths


def test_dicom_still_of_an_at_risk_patient(tmp_path, tiny_model_dir):  # noqa: F811
    from livus.io.dicom_write import write_us_dicom

    write_us_dicom(tmp_path / "in.dcm", [_fan_image()], (0.25, 0.25), {"name": "TEST^ONE", "id": "P1"})
    (tmp_path / "patient.json").write_text('{"hbv": true}')
    (tmp_path / "cfg.yaml").write_text("analyze: {gradcam: false, write_overlays: false, threads: 1}\n")
    out = tmp_path / "out"
    analyze_paths([tmp_path / "in.dcm"], out, config_path=tmp_path / "cfg.yaml", patient_path=tmp_path / "patient.json",
                  model_dir=tiny_model_dir, progress=False, language="en")
    case_dir = next((out / "cases").iterdir())
    case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    us = case["lirads"]["us"]
    assert case["lirads"]["note"] == "assigned by software, to be confirmed by the reader" and case["lirads"]["ceus"] is None
    assert us["system"] == "US LI-RADS" and us["version"] == "v2017" and us["status"] == "categorised"
    assert us["category"] in ("US-1", "US-2", "US-3") and us["visualization_score"] in ("A", "B", "C")
    assert us["management"]["action"] and us["measures"]["frames"] == 1
    if case["lesions"]:
        assert us["category"] != "US-1" or all(not o["counts"] for o in us["observations"])
    rows = list(csv.DictReader(open(out / "summary.csv", encoding="utf-8")))
    assert rows[0]["lirads"].startswith(us["category"] + " vis " + us["visualization_score"])
    html = next(case_dir.glob("report_*_en.html")).read_text(encoding="utf-8")
    assert "ACR US LI-RADS v2017" in html and "assigned by software, to be confirmed by the reader" in html
    sr = pydicom.dcmread(next(case_dir.glob("sr_*.dcm")))
    assert "LIRADS-US-CAT" in str(sr) and us["category"] in str(sr)


def test_png_without_spacing_and_patient_unknown(tmp_path, tiny_model_dir):  # noqa: F811
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), _fan_image())
    (tmp_path / "cfg.yaml").write_text("analyze: {gradcam: false, write_overlays: false, threads: 1}\n")
    out = tmp_path / "out"
    analyze_paths([tmp_path / "a.png"], out, config_path=tmp_path / "cfg.yaml", model_dir=tiny_model_dir,
                  progress=False, language="zh")
    case = json.loads((out / "cases" / "a" / "case.json").read_text(encoding="utf-8"))
    assert case["lirads"]["us"]["status"] == "not_applicable" and case["lirads"]["us"]["category"] is None
    assert "高危" in case["lirads"]["us"]["reason_text"]
    rows = list(csv.DictReader(open(out / "summary.csv", encoding="utf-8")))
    assert rows[0]["lirads"] == "US LI-RADS not applicable"
    (tmp_path / "patient.json").write_text('{"cirrhosis": true}')
    analyze_paths([tmp_path / "a.png"], out, config_path=tmp_path / "cfg.yaml", patient_path=tmp_path / "patient.json",
                  model_dir=tiny_model_dir, progress=False, language="zh")
    us = json.loads((out / "cases" / "a" / "case.json").read_text(encoding="utf-8"))["lirads"]["us"]
    if us["observations"]:  # the untrained detector's peaks: no mm without spacing
        assert us["category"] is None and us["reason"] == "size_unknown"
        assert "像素间距未知" in us["reason_text"]
    html = next((out / "cases" / "a").glob("report_*_zh.html")).read_text(encoding="utf-8")
    assert "LI-RADS 分类" in html and "由软件自动分类" in html
