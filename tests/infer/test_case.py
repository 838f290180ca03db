import json

import pytest

from livus.infer.case import (
    assess_case,
    case_risk,
    deciding_rule,
    example_case,
    example_image,
    example_problems,
    holding_rules,
    load_case_rules,
    load_patient,
)
from livus.types import Assessability, LesionTrack, PatientBackground


def _track(tid, mal, size_mm):
    return LesionTrack(track_id=tid, source="x", malignancy=mal, long_axis_mm=size_mm,
                       short_axis_mm=None if size_mm is None else size_mm * 0.8)


def test_shipped_rules_load():
    rules = load_case_rules()
    assert {r.priority for r in rules.rules} == {"routine", "soon", "urgent"}
    assert all(r.example is not None and r.finding.keys() == {"en", "zh"} for r in rules.rules)


@pytest.mark.parametrize("rule_id", [r.id for r in load_case_rules().rules])
def test_each_rule_decides_its_own_example(rule_id):
    rules = load_case_rules()
    rule = next(r for r in rules.rules if r.id == rule_id)
    tracks, patient = example_case(rule)
    res = assess_case("ex", tracks, patient, rules, language="en", image_background=example_image(rule))
    assert res.rules[0] == rule_id and res.reasons[0].startswith(f"[{rule_id}]")
    assert res.priority == rule.priority and res.follow_up_months == rule.follow_up_months
    assert example_problems(rules) == []


def test_example_decided_by_another_rule_is_an_error(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("schema: livus.case_rules/1\nrules:\n"
                 " - {id: big, when: {lesion: {long_axis_mm_min: 10}}, priority: soon, follow_up_months: 1,\n"
                 "    action: {en: x}, example: {lesions: [{long_axis_mm: 5}]}}\n"
                 " - {id: any, when: {}, priority: routine, follow_up_months: 12, action: {en: y}}\n")
    with pytest.raises(ValueError, match="example of rule big is decided by any"):
        load_case_rules(p)


_GRID = [([], PatientBackground()), ([], PatientBackground(hbv=True, afp_ng_ml=40.0)),
         ([], PatientBackground(afp_ng_ml=40.0)), ([_track(1, 0.83, 12.0)], PatientBackground()),
         ([_track(1, 0.83, 12.0), _track(2, 0.1, 4.0)], PatientBackground(cirrhosis=True, afp_ng_ml=40.0)),
         ([_track(1, 0.5, None)], PatientBackground(hcv=True)), ([_track(1, 0.2, 30.0)], PatientBackground())]


@pytest.mark.parametrize("tracks,patient", _GRID)
def test_reasons_are_consistent_with_the_findings(tracks, patient):
    rules = load_case_rules()
    for language in ("en", "zh"):
        res = assess_case("c", tracks, patient, rules, language=language)
        holding = {r.id for r in holding_rules(tracks, patient, rules)}
        assert res.rules and set(res.rules) <= holding and res.rules[0] == deciding_rule(tracks, patient, rules).id
        text = " ".join(res.reasons)
        if tracks:  # never "no lesion" next to a lesion, nor an "indeterminate" one next to a high one
            assert "no lesion" not in text and "未见病灶" not in text
            assert "no_finding" not in res.rules and "at_risk_surveillance" not in res.rules
        if any(t.malignancy >= 0.7 for t in tracks):
            assert "intermediate_malignancy" not in res.rules
        # one piece of advice: the deciding rule's finding → action, then only findings
        also = "同时符合：" if language == "zh" else "also: "
        assert "→" in res.reasons[0] and "→" not in text.split(res.reasons[0], 1)[1]
        assert all(also in r for r in res.reasons[1:-1]), res.reasons


def test_every_case_gets_a_rule():
    rules = load_case_rules()
    for tracks in ([], [_track(1, None, None)], [_track(1, None, 9.9)], [_track(1, None, 10.0)]):
        for p in (PatientBackground(), PatientBackground(cirrhosis=True), PatientBackground(afp_ng_ml=100.0)):
            assert deciding_rule(tracks, p, rules) is not None


def test_not_assessable_case_gets_no_lesions_and_no_advice():
    why = Assessability("not_assessable", ["not_ultrasound", "blank"])
    for language, expected in (("en", "not assessable: repeat the examination / check the input"),
                               ("zh", "不可评估：请重复检查或核对输入图像")):
        res = assess_case("c", [_track(1, 0.9, 80.0)], PatientBackground(cirrhosis=True), language=language,
                          assessability=why)
        assert res.tracks == [] and res.priority is None and res.follow_up_months is None and res.risk is None
        assert res.rules == [] and len(res.reasons) == 1 and res.reasons[0].startswith(expected)
        assert res.to_json_dict()["assessability"] == {"status": "not_assessable", "reasons": ["not_ultrasound", "blank"]}
    assert "not an ultrasound image" in assess_case("c", [], assessability=why).reasons[0]


def test_limited_case_is_assessed_with_a_warning():
    res = assess_case("c", [_track(1, 0.1, 7.0)], PatientBackground(), language="zh",
                      assessability=Assessability("limited", ["shadowing"]))
    assert res.priority == "soon" and "评估受限" in res.warnings[0] and "声影" in res.warnings[0]


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
    assert not any("[" in r for r in res.reasons)  # rule ids (English) only in English reasons
    low = case_risk([_track(1, 0.2, 5.0)], PatientBackground(), rules)
    high = case_risk([_track(1, 0.2, 5.0)], PatientBackground(cirrhosis=True, hbv=True), rules)
    assert 0.2 <= low < high < 1.0


def test_user_rules_file_and_bad_condition(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("schema: livus.case_rules/1\nrules:\n - id: all\n   when: {}\n   priority: urgent\n"
                 "   follow_up_months: 0\n   action: {en: see a doctor}\n")
    res = assess_case("c", [], rules=load_case_rules(p))
    assert res.priority == "urgent" and res.reasons[0] == "[all] see a doctor"
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
