import json

import pytest

from livus.infer.case import assess_case, case_risk, load_case_rules, load_patient
from livus.types import LesionTrack, PatientBackground


def _track(tid, mal, size_mm):
    return LesionTrack(track_id=tid, source="x", malignancy=mal, long_axis_mm=size_mm,
                       short_axis_mm=None if size_mm is None else size_mm * 0.8)


def test_shipped_rules_load():
    rules = load_case_rules()
    assert rules.rules[-1].when == {}  # a catch-all rule closes the table
    assert {r.priority for r in rules.rules} == {"routine", "soon", "urgent"}


@pytest.mark.parametrize(
    "tracks,patient,priority,months,rule",
    [
        ([], PatientBackground(hbv=True), "routine", 6, "at_risk_surveillance"),
        ([], PatientBackground(), "routine", 12, "no_finding"),
        ([_track(1, 0.1, 7.0)], PatientBackground(cirrhosis=True), "soon", 3, "small_nodule"),
        ([_track(1, 0.1, 12.0)], PatientBackground(cirrhosis=True), "urgent", 0.5, "large_nodule_at_risk"),
        ([_track(1, 0.1, 12.0)], PatientBackground(), "soon", 1, "large_nodule"),
        ([_track(1, 0.83, 12.0)], PatientBackground(cirrhosis=True), "urgent", 0.5, "high_malignancy"),
        ([_track(1, 0.1, None)], PatientBackground(), "soon", 1, "size_unknown"),
        ([], PatientBackground(afp_ng_ml=250.0), "soon", 1, "afp_raised"),
    ],
)
def test_rules_decide(tracks, patient, priority, months, rule):
    res = assess_case("c1", tracks, patient, language="en")
    assert res.priority == priority
    assert res.follow_up_months == months
    assert res.reasons[0].startswith(f"[{rule}]")


def test_chinese_reasons_and_risk_monotone():
    rules = load_case_rules()
    res = assess_case("c1", [_track(1, 0.83, 12.0)], PatientBackground(cirrhosis=True), language="zh")
    assert "增强" in res.reasons[0] and "病灶1" in res.reasons[-1]
    low = case_risk([_track(1, 0.2, 5.0)], PatientBackground(), rules)
    high = case_risk([_track(1, 0.2, 5.0)], PatientBackground(cirrhosis=True, hbv=True), rules)
    assert 0.2 <= low < high < 1.0


def test_user_rules_file_and_bad_condition(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("schema: livus.case_rules/1\nrules:\n - id: all\n   when: {}\n   priority: urgent\n"
                 "   follow_up_months: 0\n   action: {en: see a doctor}\n")
    res = assess_case("c", [], rules=load_case_rules(p))
    assert res.priority == "urgent"
    p.write_text("schema: livus.case_rules/1\nrules:\n - id: x\n   when: {lesion: {size_bigger: 3}}\n"
                 "   priority: urgent\n   follow_up_months: 0\n   action: {en: x}\n")
    with pytest.raises(ValueError, match="size_bigger"):
        load_case_rules(p)


def test_load_patient(tmp_path):
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"hbv": True, "afp_ng_ml": 8.5}))
    assert load_patient(p) == PatientBackground(hbv=True, afp_ng_ml=8.5)
    p.write_text(json.dumps({"hbv": True, "name": "x"}))
    with pytest.raises(ValueError, match="name"):
        load_patient(p)
