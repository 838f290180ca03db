"""Assessability of frames, clips and cases from the quality gate's verdicts."""

from __future__ import annotations

import json

import pytest
from assess_fakes import echo_like_frame

from livus.infer.assessability import (
    case_assessability,
    clip_assessabilities,
    frame_assessability,
    result_assessability,
    verdict_assessability,
)
from livus.preprocess.quality import ClipQualityGate, QualityParams, QualityVerdict
from livus.types import Assessability, Frame, FrameResult


@pytest.mark.parametrize("verdict,measures,status,reasons", [
    ("ok", {}, "assessable", []),
    ("not_ultrasound", {}, "not_assessable", ["not_ultrasound"]),
    ("blank", {}, "not_assessable", ["blank"]),
    ("frozen", {}, "not_assessable", ["frozen"]),
    ("doppler_colour", {}, "not_assessable", ["doppler_colour"]),
    ("heavily_shadowed", {}, "limited", ["shadowing"]),
    ("ceus_unchecked", {}, "limited", ["quality_unchecked"]),
    ("something_new", {}, "limited", ["low_quality"]),
    # the absolute dark-band rule also fires on real dim livers: limited, not rejected
    ("liver_not_in_view", {"striation": 1.1}, "limited", ["partial_liver"]),
    # against the clip's own liver frames, or strongly banded: not liver
    ("liver_not_in_view", {"striation": 1.1, "clip_band_to_near": 0.8}, "not_assessable", ["liver_not_in_view"]),
    ("liver_not_in_view", {"striation": 2.5}, "not_assessable", ["liver_not_in_view"]),
])
def test_verdict_assessability(verdict, measures, status, reasons):
    a = verdict_assessability(verdict, measures)
    assert (a.status, a.reasons) == (status, reasons)
    assert a.usable == (status != "not_assessable")


def test_verdict_lists_are_parameters():
    params = QualityParams(not_assessable_verdicts=("blank",), limited_verdicts=("doppler_colour",))
    assert verdict_assessability("doppler_colour", params=params).status == "limited"
    assert frame_assessability(None).status == "assessable"  # never judged (old results)
    assert frame_assessability({"verdict": "blank", "ok": False}).status == "not_assessable"


def test_echo_like_clip_is_not_liver_but_a_liver_sweep_is():
    gate = ClipQualityGate()
    verdicts = [gate.assess(Frame(echo_like_frame(i), source="echo", frame_index=i)) for i in range(12)]
    assert "ok" in [v.verdict for v in verdicts]  # one frame passes the gate on its own ...
    assert all(a == Assessability("not_assessable", ["not_liver"]) for a in clip_assessabilities(verdicts))  # ... not the clip
    sweep = [QualityVerdict("ok", "", "")] * 8 + [QualityVerdict("liver_not_in_view", "", "", {"clip_band_to_near": 0.8})] * 2
    got = clip_assessabilities(sweep)
    assert [a.status for a in got] == ["assessable"] * 8 + ["not_assessable"] * 2
    assert case_assessability(got).status == "assessable"


def test_case_assessability():
    ok, lim = Assessability("assessable"), Assessability("limited", ["shadowing"])
    bad1, bad2 = Assessability("not_assessable", ["blank"]), Assessability("not_assessable", ["frozen", "blank"])
    assert case_assessability([ok, lim, bad1]).status == "assessable"
    assert case_assessability([lim, bad1]) == lim
    assert case_assessability([bad1, bad2]) == Assessability("not_assessable", ["blank", "frozen"])
    assert case_assessability([]).status == "not_assessable"


def test_result_json_keeps_assessability_and_reads_old_lines():
    r = FrameResult("x.png", 0, (10, 10), quality={"verdict": "heavily_shadowed", "ok": False},
                    assessability=Assessability("limited", ["shadowing"]))
    d = json.loads(json.dumps(r.to_json_dict()))
    assert d["assessability"] == {"status": "limited", "reasons": ["shadowing"]}
    assert FrameResult.from_json_dict(d).assessability == r.assessability
    del d["assessability"]  # a line written before assessability existed
    old = FrameResult.from_json_dict(d)
    assert old.assessability is None and result_assessability(old) == Assessability("limited", ["shadowing"])
    with pytest.raises(ValueError, match="status"):
        Assessability("maybe")
