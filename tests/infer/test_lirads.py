"""US LI-RADS v2017 and CEUS LI-RADS v2017 rules (livus.infer.lirads): every cell of the CEUS
diagnostic table, LR-M / LR-TIV / LR-1 / LR-2, confidence, sizes, US categories, the
visualization score."""

from __future__ import annotations

import pytest

from livus.infer.lirads import (
    CEUS_TABLE,
    CeusFindings,
    LiradsParams,
    UsObservation,
    VisualizationMeasures,
    ceus_category,
    ceus_table_category,
    ceus_table_cells,
    frame_visualization_measures,
    most_severe,
    polygon_area_px,
    simple_cyst_evidence,
    size_bin,
    us_category,
    visualization_score,
)
from livus.types import FrameResult

# CEUS LI-RADS v2017 diagnostic table, written out independently of CEUS_TABLE:
# rows (APHE, washout) × sizes 5 / 15 / 25 mm (bins < 10, 10-19, >= 20).
TABLE_V2017 = [
    # no APHE: split at 20 mm
    (False, "none", 5.0, "LR-3"), (False, "none", 15.0, "LR-3"), (False, "none", 25.0, "LR-3"),
    (False, "late", 5.0, "LR-3"), (False, "late", 15.0, "LR-3"), (False, "late", 25.0, "LR-4"),
    # non-rim APHE: split at 10 mm
    (True, "none", 5.0, "LR-3"), (True, "none", 15.0, "LR-4"), (True, "none", 25.0, "LR-4"),
    (True, "late", 5.0, "LR-4"), (True, "late", 15.0, "LR-5"), (True, "late", 25.0, "LR-5"),
]


@pytest.mark.parametrize("aphe,washout,size_mm,expected", TABLE_V2017)
def test_every_cell_of_the_ceus_diagnostic_table(aphe, washout, size_mm, expected):
    assert ceus_table_category(CeusFindings(aphe=aphe, washout=washout), size_mm) == expected


def test_the_table_has_exactly_the_twelve_cells():
    assert len(CEUS_TABLE) == 12 == len(ceus_table_cells())
    for aphe, washout, size_mm, expected in TABLE_V2017:
        assert CEUS_TABLE[(aphe, washout, size_bin(size_mm))] == expected


@pytest.mark.parametrize("size_mm,bin_", [(0.5, "<10"), (9.99, "<10"), (10.0, "10-19"), (19.99, "10-19"),
                                          (20.0, ">=20"), (80.0, ">=20")])
def test_size_bins_at_the_thresholds(size_mm, bin_):
    assert size_bin(size_mm) == bin_


@pytest.mark.parametrize("size_mm", [5.0, 15.0, 25.0])
@pytest.mark.parametrize("findings", [
    CeusFindings(aphe=True, washout="none", rim_aphe=True),  # rim APHE
    CeusFindings(aphe=True, washout="late", rim_aphe=True),
    CeusFindings(aphe=True, washout="early"),  # early (< 60 s) washout
    CeusFindings(aphe=False, washout="early"),
    CeusFindings(aphe=True, washout="late", marked_washout=True),  # marked washout
    CeusFindings(aphe=False, washout="late", marked_washout=True),
])
def test_lr_m(findings, size_mm):
    assert ceus_table_category(findings, size_mm) == "LR-M"


def test_tiv_and_benign_only_from_inputs_and_in_algorithm_order():
    hcc_like = dict(aphe=True, washout="late")
    assert ceus_table_category(CeusFindings(**hcc_like, tumor_in_vein=True), 30.0) == "LR-TIV"
    assert ceus_table_category(CeusFindings(aphe=True, washout="early", tumor_in_vein=True), 30.0) == "LR-TIV"
    assert ceus_table_category(CeusFindings(aphe=False, washout="none", benign="definite"), 30.0) == "LR-1"
    assert ceus_table_category(CeusFindings(aphe=False, washout="none", benign="probable"), 8.0) == "LR-2"
    assert ceus_table_category(CeusFindings(aphe=True, washout="early", benign="definite"), 8.0) == "LR-1"
    assert ceus_table_category(CeusFindings(**hcc_like), 30.0) == "LR-5"  # never LR-TIV / LR-1 by itself
    with pytest.raises(ValueError):
        ceus_table_category(CeusFindings(aphe=True, washout="sometimes"), 30.0)


def _probs(aphe, none, late, early):
    return {"arterial_phase_hyperenhancement": aphe, "washout_none": none, "washout_late": late,
            "washout_early": early, "capsule_enhancement": 0.9}


def test_confident_features_give_a_confident_category_with_the_assumptions():
    res = ceus_category(_probs(0.97, 0.03, 0.95, 0.02), 22.0)
    assert res.category == "LR-5" and not res.low_confidence and res.alternatives == []
    assert {c.name: c.value for c in res.calls} == {"arterial_phase_hyperenhancement": True, "washout": "late"}
    assert all(c.confident for c in res.calls)
    assert res.assumptions == ["rim_aphe_not_measured", "washout_degree_not_measured"]
    assert "capsule_enhancement" not in {c.name for c in res.calls}  # not a CEUS LI-RADS feature


def test_low_confidence_names_the_features_that_would_change_it():
    res = ceus_category(_probs(0.9, 0.35, 0.6, 0.05), 15.0)  # APHE sure, washout late vs none unsure
    assert res.category == "LR-5" and res.low_confidence
    assert res.alternatives == [{"feature": "washout", "value": "none", "probability": 0.35, "category": "LR-4"}]
    # an unsure APHE that changes nothing (< 10 mm, no washout: LR-3 either way) leaves it confident
    res = ceus_category(_probs(0.55, 0.95, 0.03, 0.02), 6.0)
    assert res.category == "LR-3" and not res.low_confidence
    assert not next(c for c in res.calls if c.name == "arterial_phase_hyperenhancement").confident
    # an unsure APHE that matters
    res = ceus_category(_probs(0.6, 0.95, 0.03, 0.02), 15.0)
    assert res.category == "LR-4" and [a["category"] for a in res.alternatives] == ["LR-3"]


def test_rim_and_marked_inputs_are_used_when_given():
    feats = _probs(0.97, 0.03, 0.95, 0.02)
    assert ceus_category({**feats, "rim_arterial_phase_hyperenhancement": 0.9}, 22.0).category == "LR-M"
    res = ceus_category({**feats, "rim_arterial_phase_hyperenhancement": 0.05, "washout_marked": 0.02}, 22.0)
    assert res.category == "LR-5" and res.assumptions == []


def test_no_timing_no_features_and_unknown_size():
    feats = _probs(0.97, 0.03, 0.95, 0.02)
    res = ceus_category(feats, 22.0, timing_known=False)
    assert res.category is None and res.reason == "timing_unknown"
    assert ceus_category({}, 22.0).reason == "no_ceus_features"
    res = ceus_category(feats, None)  # APHE + late washout: LR-4 (< 10 mm) or LR-5
    assert res.category is None and res.reason == "size_unknown" and res.candidates == ["LR-4", "LR-5"]
    assert ceus_category(_probs(0.9, 0.05, 0.05, 0.9), None).category == "LR-M"  # size does not matter


def test_most_severe_order():
    assert most_severe(["LR-3", "LR-5", "LR-M"]) == "LR-M"
    assert most_severe(["LR-1", "LR-4"]) == "LR-4" and most_severe([]) is None


# ----------------------------------------------------------------------------- US LI-RADS


def _obs(i, size, anechoic=None, enhancement=None, malignancy=0.05):
    feats = {k: v for k, v in (("echo_anechoic", anechoic), ("posterior_enhancement", enhancement)) if v is not None}
    return UsObservation(i, size, feats, malignancy)


@pytest.mark.parametrize("observations,category,deciding", [
    ([], "US-1", None),
    ([_obs(1, 7.0)], "US-2", 1),
    ([_obs(1, 9.99)], "US-2", 1),
    ([_obs(1, 10.0)], "US-3", 1),
    ([_obs(1, 7.0), _obs(2, 14.0), _obs(3, 12.0)], "US-3", 2),
    ([_obs(1, 25.0, 0.97, 0.95)], "US-1", None),  # simple cyst: definitely benign
    ([_obs(1, 25.0, 0.97, 0.95), _obs(2, 6.0)], "US-2", 2),
    ([_obs(1, 25.0, 0.97, 0.85)], "US-3", 1),  # evidence not strong enough: it counts
    ([_obs(1, 25.0, 0.97, None)], "US-3", 1),  # no posterior-enhancement probability: it counts
    ([_obs(1, 25.0, 0.97, 0.95, 0.6)], "US-3", 1),  # "anechoic" but the malignancy head doubts it: it counts
    ([_obs(1, 25.0, 0.97, 0.95, 0.21)], "US-3", 1),
    ([_obs(1, 25.0, 0.97, 0.95, None)], "US-3", 1),  # malignancy unknown: no discount
    ([_obs(1, 25.0, 0.97, 0.95, 0.2)], "US-1", None),
    ([_obs(1, None), _obs(2, 12.0)], "US-3", 2),  # the unknown size does not matter
])
def test_us_category(observations, category, deciding):
    res = us_category(observations)
    assert (res.category, res.deciding) == (category, deciding)


def test_us_category_without_mm_is_not_given():
    res = us_category([_obs(1, None), _obs(2, 6.0)])
    assert res.category is None and res.reason == "size_unknown" and res.candidates == ["US-2", "US-3"]
    assert us_category([_obs(1, None, 0.99, 0.99)]).category == "US-1"  # a cyst needs no size
    assert us_category([], venous_thrombus=True).category == "US-3"


def test_benign_threshold_is_configurable():
    o = [_obs(1, 25.0, 0.85, 0.85)]
    assert us_category(o).category == "US-3"
    assert us_category(o, LiradsParams(benign_min_probability=0.8)).category == "US-1"
    ev = simple_cyst_evidence({"echo_anechoic": 0.95, "posterior_enhancement": 0.92}, malignancy=0.1)
    assert ev.definitely_benign and ev.kind == "simple_cyst" and ev.evidence["malignancy"] == 0.1
    assert not simple_cyst_evidence({"echo_anechoic": 0.95, "posterior_enhancement": 0.92}).definitely_benign
    o = [_obs(1, 25.0, 0.97, 0.95, 0.3)]
    assert us_category(o).category == "US-3"
    assert us_category(o, LiradsParams(benign_max_malignancy=0.3)).category == "US-1"


# ----------------------------------------------------------------------------- visualization


def _vis(**kw):
    base = dict(n_frames=4, n_limited=0, liver_coverage=0.5, liver_depth_share=0.9, shadow_share=0.0)
    return visualization_score(VisualizationMeasures(**{**base, **kw}))


@pytest.mark.parametrize("kw,score,finding", [
    ({}, "A", None),
    ({"n_limited": 1}, "B", "vis_some_frames_limited"),
    ({"n_limited": 4}, "C", "vis_all_frames_limited"),
    ({"liver_coverage": 0.2}, "B", "vis_coverage_low"),
    ({"liver_coverage": 0.05}, "C", "vis_coverage_very_low"),
    ({"liver_coverage": None}, "B", "vis_coverage_not_measured"),
    ({"liver_depth_share": 0.3}, "B", "vis_liver_shallow"),
    ({"shadow_share": 0.08}, "B", "vis_shadowing"),
    ({"shadow_share": 0.2}, "C", "vis_shadowing_severe"),
])
def test_visualization_score(kw, score, finding):
    got, findings = _vis(**kw)
    assert got == score
    assert (finding is None and findings == []) or (score, finding) in findings


def test_worst_finding_decides():
    score, findings = _vis(n_limited=1, liver_coverage=0.05)
    assert score == "C" and {s for s, _ in findings} == {"B", "C"}


def test_frame_measures_from_outlines_and_quality():
    fan = [[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]]
    liver = [[0.0, 0.0], [100.0, 0.0], [100.0, 40.0], [0.0, 40.0]]
    assert polygon_area_px(fan) == 10000.0 and polygon_area_px(None) == 0.0
    r = FrameResult("x", 0, (100, 100), fan_polygon_px=fan, liver_polygon_px=liver,
                    quality={"verdict": "ok", "measures": {"shadow_share": 0.03, "band_to_near": 0.8}})
    m = frame_visualization_measures(r)
    assert m == {"liver_coverage": pytest.approx(0.4), "liver_depth_share": pytest.approx(0.4),
                 "shadow_share": 0.03, "band_to_near": 0.8}
    r.liver_polygon_px = None
    assert frame_visualization_measures(r)["liver_coverage"] is None
