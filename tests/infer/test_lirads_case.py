"""LI-RADS of a case (livus.infer.lirads_case) and the LI-RADS table (livus.infer.lirads_table)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from livus.infer.lirads_case import assess_ceus, assess_us, case_lirads, lirads_for_case
from livus.infer.lirads_table import REQUIRED_KEYS, load_lirads_table, parse_lirads_table
from livus.types import Assessability, CaseResult, FrameResult, Lesion, LesionTrack, PatientBackground

AT_RISK = PatientBackground(cirrhosis=True)
FAN = [[0.0, 0.0], [200.0, 0.0], [200.0, 200.0], [0.0, 200.0]]
LIVER = [[0.0, 0.0], [200.0, 0.0], [200.0, 150.0], [0.0, 150.0]]


def _frame(spacing=(0.2, 0.2), verdict="ok", shadow=0.0, assess=None, liver=LIVER, model="livus-detector"):
    return FrameResult("a.png", 0, (200, 200), pixel_spacing_mm=spacing, fan_polygon_px=FAN, liver_polygon_px=liver,
                       quality={"verdict": verdict, "ok": verdict == "ok", "measures": {"shadow_share": shadow}},
                       assessability=assess or Assessability(), model={"name": model, "version": "t"})


def _track(tid, size_mm, features=None, ceus=None, malignancy=0.4):
    les = Lesion(tid, 0.9, (50.0, 50.0), 40.0, 30.0, 0.0, long_axis_mm=size_mm, features=dict(features or {}))
    return LesionTrack(tid, "a.png", [(0, les)], 0.9, malignancy, size_mm, None if size_mm is None else 0.8 * size_mm,
                       ceus_features=dict(ceus or {}))


TABLE = load_lirads_table()


def test_shipped_table_covers_every_category_in_both_languages():
    assert set(REQUIRED_KEYS) <= set(TABLE.management)
    for m in TABLE.management.values():
        assert m.action["en"] and m.action["zh"]
    assert TABLE.management["US-1"].follow_up_months == 6 and TABLE.management["US-2"].follow_up_months == 3
    assert "CT or MRI" in TABLE.management["US-3"].action["en"] and "CEUS" in TABLE.management["US-3"].action["en"]
    assert TABLE.management_for("US-1", "C").key == "US-1/C" and TABLE.management_for("US-1", "B").key == "US-1"
    assert TABLE.management_for("US-3", "C").key == "US-3"


@pytest.mark.parametrize("change,message", [
    (lambda d: d["management"].pop("US-1/C"), "no management for"),
    (lambda d: d["management"].update({"US-4": d["management"]["US-1"]}), "unknown management key"),
    (lambda d: d["management"].update({"LR-5/C": d["management"]["LR-5"]}), "unknown management key"),
    (lambda d: d["management"]["LR-3"]["action"].pop("zh"), "needs the languages"),
    (lambda d: d["params"].update({"shadow_x": 1}), "unknown key"),
    (lambda d: d.update({"schema": "x"}), "expected schema"),
])
def test_bad_tables_are_refused(change, message):
    from importlib import resources

    doc = yaml.safe_load(resources.files("livus.infer").joinpath("lirads.yaml").read_text(encoding="utf-8"))
    change(doc)
    with pytest.raises(ValueError, match=message):
        parse_lirads_table(doc)


def test_a_department_table_changes_management_and_thresholds(tmp_path):
    from importlib import resources

    doc = yaml.safe_load(resources.files("livus.infer").joinpath("lirads.yaml").read_text(encoding="utf-8"))
    doc["management"]["US-2"] = {"follow_up_months": 2, "action": {"en": "our US in 2 months", "zh": "2个月复查"}}
    doc["params"]["us_threshold_mm"] = 8.0
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    table = load_lirads_table(path)
    res = assess_us(AT_RISK, [_frame()], [_track(1, 7.0)], table)
    assert res.category == "US-2" and res.management.text("en") == "our US in 2 months"
    assert assess_us(AT_RISK, [_frame()], [_track(1, 9.0)], table).category == "US-3"


def test_us_categories_and_the_measures_behind_them():
    res = assess_us(AT_RISK, [_frame()], [], TABLE)
    assert (res.status, res.category, res.visualization) == ("categorised", "US-1", "A")
    assert res.management.key == "US-1" and res.management.follow_up_months == 6
    assert res.measures.liver_coverage == pytest.approx(0.75)
    res = assess_us(AT_RISK, [_frame()], [_track(1, 7.0), _track(2, 4.0)], TABLE)
    assert res.category == "US-2" and res.deciding_observation == 1 and res.management.key == "US-2"
    cyst = {"echo_anechoic": 0.96, "posterior_enhancement": 0.93}
    res = assess_us(AT_RISK, [_frame()], [_track(1, 18.0, cyst, malignancy=0.1)], TABLE)
    assert res.category == "US-1" and res.observations[0]["definitely_benign"] == "simple_cyst"
    assert not res.observations[0]["counts"] and res.observations[0]["evidence"]["malignancy"] == 0.1
    res = assess_us(AT_RISK, [_frame()], [_track(1, 18.0, cyst)], TABLE)  # malignancy 0.4: not discounted
    assert res.category == "US-3" and res.observations[0]["counts"]


def test_visualization_c_never_gives_the_clean_negative_advice():
    limited = Assessability("limited", ["shadowing"])
    frames = [_frame(verdict="heavily_shadowed", shadow=0.2, assess=limited) for _ in range(2)]
    res = assess_us(AT_RISK, frames, [], TABLE)
    assert res.category == "US-1" and res.visualization == "C"
    assert res.management.key == "US-1/C" and res.management.follow_up_months == 3
    assert ("C", "vis_all_frames_limited") in res.visualization_findings
    assert "does not exclude" in res.management.text("en")
    res = assess_us(AT_RISK, frames, [_track(1, 6.0)], TABLE)
    assert res.management.key == "US-2/C"


@pytest.mark.parametrize("kwargs,status,reason", [
    (dict(patient=PatientBackground()), "not_applicable", "not_at_risk"),
    (dict(patient=PatientBackground(hbv=False, hcv=False, cirrhosis=False)), "not_applicable", "not_at_risk"),
    (dict(assessability=Assessability("not_assessable", ["blank"])), "not_categorised", "not_assessable"),
    (dict(frames=[_frame(assess=Assessability("not_assessable", ["blank"]))]), "not_categorised", "not_assessable"),
    (dict(analysed=False), "not_categorised", "lesions_not_analysed"),
    (dict(frames=[_frame(spacing=None)], tracks=[_track(1, None)]), "not_categorised", "size_unknown"),
])
def test_us_not_given_with_the_reason(kwargs, status, reason):
    args = dict(patient=AT_RISK, frames=[_frame()], tracks=[_track(1, 12.0)], table=TABLE)
    args.update(kwargs)
    res = assess_us(**args)
    assert (res.status, res.reason, res.category, res.management) == (status, reason, None, None)


def test_every_risk_factor_makes_it_applicable():
    for p in (PatientBackground(hbv=True), PatientBackground(hcv=True), PatientBackground(cirrhosis=True)):
        assert assess_us(p, [_frame()], [], TABLE).status == "categorised"


HCC = {"arterial_phase_hyperenhancement": 0.97, "washout_none": 0.03, "washout_late": 0.95, "washout_early": 0.02,
       "capsule_enhancement": 0.4}
METS = {"arterial_phase_hyperenhancement": 0.9, "washout_none": 0.05, "washout_late": 0.1, "washout_early": 0.85}


def test_ceus_per_observation_and_the_deciding_one():
    res = assess_ceus(AT_RISK, [_track(1, 25.0, ceus=HCC), _track(2, 12.0, ceus=METS), _track(3, 8.0, ceus=HCC)], TABLE)
    assert [o["category"] for o in res.observations] == ["LR-5", "LR-M", "LR-4"]
    assert (res.category, res.deciding_observation, res.management.key) == ("LR-M", 2, "LR-M")
    feats = res.observations[0]["features"]
    assert feats["arterial_phase_hyperenhancement"]["value"] is True and feats["washout"]["value"] == "late"
    assert feats["washout"]["probabilities"]["late"] == pytest.approx(0.95)


@pytest.mark.parametrize("tracks,notes,reason", [
    ([], [], "no_observation"),
    ([], ["ceus_mode", "ceus_no_times"], "timing_unknown"),
    (["untimed"], ["ceus_mode", "ceus_no_times"], "timing_unknown"),
    (["untimed"], ["ceus_mode", "ceus_no_model"], "no_ceus_model"),
    (["untimed"], ["ceus_mode"], "no_ceus_features"),
])
def test_ceus_not_given_with_the_reason(tracks, notes, reason):
    tracks = [_track(1, 25.0) for _ in tracks]
    res = assess_ceus(AT_RISK, tracks, TABLE, notes)
    assert (res.status, res.category, res.reason) == ("not_categorised", None, reason)
    assert all(o["reason"] == reason for o in res.observations)


def test_ceus_features_without_timing_note_give_no_category():
    res = assess_ceus(AT_RISK, [_track(1, 25.0, ceus=HCC)], TABLE, ["ceus_no_times"])
    assert res.category is None and res.reason == "timing_unknown"


def test_case_json_block_and_summary():
    res = lirads_for_case(AT_RISK, [_frame()], [_track(1, 7.0)], [_track(2, 25.0, ceus=HCC)], TABLE, "zh")
    case = CaseResult("c", lirads=res)
    block = json.loads(json.dumps(case.to_json_dict(), ensure_ascii=False))["lirads"]
    assert block["note"] == "由软件自动分类，须经阅片医师确认"
    us, ceus = block["us"], block["ceus"]
    assert (us["system"], us["version"], us["category"], us["visualization_score"]) == ("US LI-RADS", "v2017", "US-2", "A")
    assert us["deciding_observation"] == 1 and us["management"]["key"] == "US-2" and "3个月" in us["management"]["action"]
    assert us["measures"]["liver_coverage"] == pytest.approx(0.75)
    assert (ceus["system"], ceus["category"], ceus["deciding_observation"]) == ("CEUS LI-RADS", "LR-5", 2)
    assert ceus["observations"][0]["features"]["washout"]["confident"] is True
    assert res.summary() == "US-2 vis A; LR-5"
    no = lirads_for_case(PatientBackground(), [_frame(spacing=None)], [], None, TABLE, "en")
    assert no.summary() == "US LI-RADS not applicable" and no.ceus is None
    assert no.to_json_dict()["us"]["reason_text"].startswith("the patient is not known to be at risk")
    size = lirads_for_case(AT_RISK, [_frame(spacing=None)], [_track(1, None)], None, TABLE, "en")
    assert size.to_json_dict()["us"]["reason_text"] == ("pixel spacing unknown: the size threshold in mm cannot be "
                                                       "applied (could be US-2 or US-3)")


def test_case_lirads_splits_bmode_and_ceus_inputs():
    still_track, ceus_track = _track(1, 7.0), _track(2, 25.0, ceus=HCC)
    still = SimpleNamespace(frames=[SimpleNamespace(result=_frame())], tracks=None, ceus_notes=[])
    clip = SimpleNamespace(frames=[SimpleNamespace(result=_frame(verdict="ceus_unchecked"))], tracks=[ceus_track],
                           ceus_notes=[("ceus_mode", {})])
    case = CaseResult("c", tracks=[still_track, ceus_track], patient=AT_RISK, assessability=Assessability())
    res = case_lirads(case, [still, clip], "en")
    assert res.us.category == "US-2" and res.us.deciding_observation == 1
    assert res.ceus.category == "LR-5" and [o["id"] for o in res.ceus.observations] == [2]
    only_clip = case_lirads(CaseResult("c", tracks=[ceus_track], patient=AT_RISK), [clip], "en")
    assert only_clip.us is None and only_clip.ceus.category == "LR-5"
    no_model = SimpleNamespace(frames=[SimpleNamespace(result=_frame(model="none"))], tracks=None, ceus_notes=[])
    res = case_lirads(CaseResult("c", patient=AT_RISK), [no_model], "en")
    assert res.us.reason == "lesions_not_analysed"
