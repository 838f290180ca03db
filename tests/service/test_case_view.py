"""case_view: a case.json written in one language, worded for the page in both; only what
reproduces the stored text is re-worded, everything else is shown as stored."""

from __future__ import annotations

import json

from livus.infer.case import assess_case, load_case_rules
from livus.infer.case_notes import frame_count_warnings
from livus.infer.lirads_case import lirads_for_case
from livus.infer.lirads_table import cached_lirads_table
from livus.service.case_view import case_frames, case_view, study_assessability
from livus.types import Assessability, FrameResult, LesionTrack, PatientBackground

RULES, TABLE = load_case_rules(), cached_lirads_table(None)
AT_RISK = PatientBackground(hbv=True)


def _case(tracks, assess, patient=AT_RISK, language="en", frames=None) -> dict:
    frames = frames or [FrameResult("a.png", 0, (320, 240), pixel_spacing_mm=(0.2, 0.2), assessability=assess,
                                    model={"name": "d", "version": "1"})]
    case = assess_case("c", tracks, patient, RULES, language, assess)
    case.lirads = lirads_for_case(patient, frames, tracks, None, TABLE, language, assess)
    return json.loads(json.dumps(case.to_json_dict(), ensure_ascii=False))


def test_reasons_and_lirads_reworded_in_the_other_language():
    tracks = [LesionTrack(1, "a.png", malignancy=0.8, long_axis_mm=14.0)]
    en = _case(tracks, Assessability("assessable"))
    zh = _case(tracks, Assessability("assessable"), language="zh")
    view = case_view(en, RULES, TABLE)
    assert view["text"]["en"]["reasons"] == en["reasons"]
    assert view["text"]["zh"]["reasons"] == zh["reasons"]  # exactly what a zh analysis says
    assert (view["text"]["zh"]["follow_up"], view["text"]["en"]["follow_up"]) == ("2周", "2 weeks")
    us = view["text"]["zh"]["lirads"]["systems"][0]
    assert us["title"].startswith("美国放射学会（ACR）超声 LI-RADS v2017") and us["summary"] == "US-3 阳性"
    assert ["处理建议", TABLE.management["US-3"].text("zh")] in us["rows"]
    assert view["text"]["zh"]["lirads"]["note"] == "由软件自动分类，须经阅片医师确认"


def test_changed_tables_keep_the_stored_text():
    tracks = [LesionTrack(1, "a.png", malignancy=0.8, long_axis_mm=14.0)]
    en = _case(tracks, Assessability("assessable"))
    en["rules"] = ["no_such_rule"]  # a rule the department's table no longer has
    en["lirads"]["us"]["management"]["action"] = "local protocol 7"  # management changed since
    view = case_view(en, RULES, TABLE)
    assert view["text"]["zh"]["reasons"] == en["reasons"]
    rows = dict(map(tuple, view["text"]["zh"]["lirads"]["systems"][0]["rows"]))
    assert rows["处理建议"] == "local protocol 7"


def test_not_assessable_and_limited_cases():
    bad = Assessability("not_assessable", ["not_ultrasound"])
    view = case_view(_case([], bad), RULES, TABLE)
    assert view["assessability"] == {"status": "not_assessable", "reasons": ["not_ultrasound"]}
    assert view["text"]["zh"]["reasons"] == ["不可评估：请重复检查或核对输入图像（非超声图像）"]
    assert view["text"]["en"]["reasons"] == ["not assessable: repeat the examination / check the input "
                                             "(not an ultrasound image)"]
    assert view["text"]["en"]["lirads"]["systems"][0]["summary"] == "not categorised: the images are not assessable"

    limited = Assessability("limited", ["shadowing"])
    frames = [limited, Assessability("not_assessable", ["blank"])]
    case = _case([], limited, PatientBackground())
    case["warnings"] += frame_count_warnings(frames, "en") + ["clip.mp4: something livus cannot re-word"]
    view = case_view(case, RULES, TABLE, frames)
    zh = view["text"]["zh"]["warnings"]
    assert zh[0].startswith("评估受限（声影遮挡）")
    assert "1帧不可评估，未报告其病灶" in zh and "1帧评估受限，其结果已标注且权重降低" in zh
    assert zh[-1] == "clip.mp4: something livus cannot re-word"
    assert view["text"]["zh"]["lirads"]["systems"][0]["status"] == "not_applicable"


def test_study_assessability_and_case_frames():
    assert study_assessability(None) == []
    case = _case([], Assessability("limited", ["partial_liver"]))
    assert study_assessability({"cases": [case]}) == [{"status": "limited", "reasons": ["partial_liver"]}]
    results = [{"source": "a.png", "quality": {"verdict": "blank"}}, {"source": "b.png", "assessability": None}]
    case["sources"] = ["a.png"]
    assert [a.status for a in case_frames(case, 2, results)] == ["not_assessable"]
    assert [a.status for a in case_frames(case, 1, results)] == ["not_assessable", "assessable"]


def test_study_page_with_an_unreadable_rules_table_shows_the_stored_reasons(tmp_path):
    """A rules table that cannot be read (edited since) never breaks the study page."""
    from livus.service.storage import Study

    from .conftest import make_service

    bad = tmp_path / "analysis.yaml"
    bad.write_text(f"analyze:\n  case_rules_path: {tmp_path / 'missing.yaml'}\n", encoding="utf-8")
    svc = make_service(tmp_path / "data", analysis_config=str(bad))
    case = _case([LesionTrack(1, "a.png", malignancy=0.8, long_axis_mm=14.0)], Assessability("assessable"))
    with svc.state.sm() as db:
        s = Study(description="x", status="done", case_json={"cases": [case]})
        db.add(s)
        db.commit()
        uid = s.uid
    r = svc.client("doc").get(f"/api/studies/{uid}")
    assert r.status_code == 200, r.text
    assert r.json()["case_views"][0]["text"]["zh"]["reasons"] == case["reasons"]
