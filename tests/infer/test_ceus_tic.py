"""Rim APHE and marked washout measured on time-intensity curves (livus.infer.ceus_tic), on
synthetic contrast frames whose grey levels (core, periphery, liver) are set per frame, so the
answer is known; and the measures fed into the CEUS LI-RADS rule."""

from __future__ import annotations

import numpy as np
import pytest

from livus.infer.ceus_tic import frame_regions, lesion_tic, marked_washout, measure_rim_and_washout, rim_aphe
from livus.infer.lirads import MARKED_WASHOUT, RIM_APHE, LiradsParams, ceus_category

SIZE = 160
CENTRE = (80.0, 80.0)


def _frame(radius_px: float, core: float, periphery: float, liver: float) -> np.ndarray:
    """A uniform liver with a disc lesion: grey ``core`` inside half the radius, ``periphery``
    from there to the outline (grey / 255 units)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    d = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
    g = np.where(d < 0.5 * radius_px, core, np.where(d < radius_px, periphery, liver))
    return np.clip(g * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _outline(radius_px: float) -> tuple[list[float], list[list[float]]]:
    a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    poly = np.stack([CENTRE[0] + radius_px * np.cos(a), CENTRE[1] + radius_px * np.sin(a)], 1).tolist()
    return [CENTRE[0] - radius_px, CENTRE[1] - radius_px, CENTRE[0] + radius_px, CENTRE[1] + radius_px], poly


def _clip(radius_px: float, curve: list[tuple[float, float, float, float]]):
    """``curve``: (time s, core, periphery, liver) per frame → measure_rim_and_washout inputs."""
    box, poly = _outline(radius_px)
    frames = [_frame(radius_px, c, p, liv) for _, c, p, liv in curve]
    return frames, [t for t, *_ in curve], [box] * len(curve), [poly] * len(curve)


def _measure(radius_px, curve, params=None):
    return measure_rim_and_washout(*_clip(radius_px, curve), params=params)


# metastasis-like: ring-enhancing in the arterial phase, punched out by 90 s
RIM_MARKED = [(3, 0.0, 0.0, 0.0), (18, 0.25, 0.8, 0.45), (25, 0.3, 0.75, 0.55), (60, 0.15, 0.2, 0.6), (90, 0.08, 0.1, 0.6)]
# HCC-like: homogeneous APHE, mild late washout
HOMOGENEOUS_MILD = [(3, 0.0, 0.0, 0.0), (18, 0.8, 0.8, 0.45), (25, 0.78, 0.78, 0.55), (90, 0.52, 0.52, 0.6),
                    (150, 0.4, 0.4, 0.55)]


def test_regions_of_a_disc():
    box, poly = _outline(20.0)
    r = frame_regions(_frame(20.0, 0.2, 0.7, 0.5), box, poly)
    assert r.core == pytest.approx(0.2, abs=0.01) and r.periphery == pytest.approx(0.7, abs=0.01)
    assert r.liver == pytest.approx(0.5, abs=0.01) and r.radius_px == pytest.approx(20.0, rel=0.05)
    assert frame_regions(_frame(20.0, 0.2, 0.7, 0.5), [400, 400, 420, 420], None) is None  # outside the frame


def test_rim_aphe_and_marked_washout_are_measured_present():
    m = _measure(20.0, RIM_MARKED)
    rim, marked = m[RIM_APHE], m[MARKED_WASHOUT]
    assert rim.measured and rim.probability > 0.95 and rim.time_s == 18  # the brightest-periphery arterial frame
    assert rim.value == pytest.approx((0.8 - 0.25) / 0.8, abs=0.02)
    assert marked.measured and marked.probability > 0.95 and marked.time_s == 90
    assert marked.value == pytest.approx(0.085 / 0.6, abs=0.03)  # lesion 0.085 (short of the edge) / liver 0.6


def test_homogeneous_aphe_and_mild_washout_are_measured_absent():
    m = _measure(20.0, HOMOGENEOUS_MILD)
    assert m[RIM_APHE].measured and m[RIM_APHE].probability < 0.05
    assert m[MARKED_WASHOUT].measured and m[MARKED_WASHOUT].probability < 0.05
    # mild washout at 150 s is outside the 2-minute window: the 90 s frame decides
    assert m[MARKED_WASHOUT].time_s == 90 and m[MARKED_WASHOUT].value == pytest.approx(0.52 / 0.6, abs=0.02)


def test_a_dark_core_without_peripheral_hyperenhancement_is_not_rim_aphe():
    # periphery iso to the liver, core dark (e.g. necrosis): no hyperenhancement, so no rim APHE
    m = _measure(20.0, [(3, 0, 0, 0), (20, 0.1, 0.5, 0.52)])
    assert m[RIM_APHE].measured and m[RIM_APHE].probability < 0.2 and m[RIM_APHE].margin < 0


def test_confidence_comes_from_the_margin():
    p = LiradsParams()
    # rim contrast just above the threshold: present, but not confident
    periph = 0.8
    core = periph * (1 - (p.rim_min_contrast + 0.02))
    near = _measure(20.0, [(3, 0, 0, 0), (18, core, periph, 0.45)])[RIM_APHE]
    assert 0.5 <= near.probability < p.confident_probability
    far = _measure(20.0, [(3, 0, 0, 0), (18, 0.2, periph, 0.45)])[RIM_APHE]
    assert far.probability > near.probability and far.probability >= p.confident_probability
    # and it feeds the LR-M rule as a low-confidence LR-M naming what would change it
    feats = {"arterial_phase_hyperenhancement": 0.97, "washout_none": 0.03, "washout_late": 0.95, "washout_early": 0.02,
             RIM_APHE: near.probability, MARKED_WASHOUT: 0.01}
    res = ceus_category(feats, 22.0)
    assert res.category == "LR-M" and res.low_confidence
    assert {"feature": RIM_APHE, "value": False, "category": "LR-5"}.items() <= res.alternatives[0].items()


def test_a_lesion_that_never_enhanced_has_no_marked_washout():
    # cyst-like: dark in every phase, as dark as a punched-out metastasis at 90 s, but never enhanced
    m = _measure(20.0, [(3, 0, 0, 0), (18, 0.05, 0.05, 0.45), (60, 0.05, 0.05, 0.6), (90, 0.05, 0.05, 0.6)])
    marked = m[MARKED_WASHOUT]
    assert marked.measured and marked.value < 0.2 and marked.probability < 0.01
    assert marked.details["prior_enhancement"] < 0.2


def test_black_level_from_frames_before_the_contrast():
    late = [(18, 0.9, 0.9, 0.5), (45, 0.35, 0.35, 0.5), (90, 0.35, 0.35, 0.5)]  # enhanced, then washed out
    with_black = _measure(20.0, [(2, 0.2, 0.2, 0.2)] + late)[MARKED_WASHOUT]
    without = _measure(20.0, late)[MARKED_WASHOUT]
    assert with_black.details["black"] == pytest.approx(0.2, abs=0.01) and without.details["black"] == 0.0
    assert with_black.value == pytest.approx(0.5, abs=0.02) and with_black.probability > 0.8  # (0.35-0.2)/(0.5-0.2)
    assert without.value == pytest.approx(0.7, abs=0.02) and without.probability < 0.2


@pytest.mark.parametrize("radius,curve,feature,reason", [
    (6.0, RIM_MARKED, RIM_APHE, "lesion_too_small"),  # no room for a core and a ring
    (3.0, RIM_MARKED, MARKED_WASHOUT, "lesion_too_small"),
    (20.0, [(3, 0, 0, 0), (60, 0.1, 0.1, 0.6)], RIM_APHE, "no_arterial_frames"),
    (20.0, [(3, 0, 0, 0), (18, 0.2, 0.8, 0.45), (150, 0.05, 0.05, 0.5)], MARKED_WASHOUT, "no_washout_frames"),
    (20.0, [(3, 0, 0, 0), (60, 0.05, 0.05, 0.6), (90, 0.08, 0.08, 0.6)], MARKED_WASHOUT, "no_enhancement_frames"),
    (20.0, [(3, 0.3, 0.3, 0.3), (18, 0.2, 0.8, 0.3)], RIM_APHE, "liver_not_enhanced"),  # liver at the black level
])
def test_not_measured_where_the_clip_does_not_allow_it(radius, curve, feature, reason):
    f = _measure(radius, curve)[feature]
    assert not f.measured and f.probability is None and f.reason == reason
    assert f.to_json_dict()["measured"] is False


def test_not_measured_keeps_the_assumption_in_the_rule():
    m = _measure(6.0, RIM_MARKED)  # rim not measurable, marked washout measured
    feats = {"arterial_phase_hyperenhancement": 0.97, "washout_none": 0.03, "washout_late": 0.95, "washout_early": 0.02}
    feats.update({k: f.probability for k, f in m.items() if f.measured})
    res = ceus_category(feats, 22.0)
    assert res.assumptions == ["rim_aphe_not_measured"] and res.category == "LR-M"  # marked washout decides


def test_thresholds_come_from_the_params():
    tic = lesion_tic(*_clip(20.0, RIM_MARKED))
    assert marked_washout(tic).probability > 0.9
    assert marked_washout(tic, LiradsParams(marked_max_ratio=0.02)).probability < 0.1
    assert rim_aphe(tic, LiradsParams(rim_min_contrast=0.9)).probability < 0.1
    assert rim_aphe(tic, LiradsParams(rim_min_radius_px=30.0)).reason == "lesion_too_small"


def test_inputs_must_line_up():
    frames, times, boxes, polys = _clip(20.0, RIM_MARKED)
    with pytest.raises(ValueError):
        lesion_tic(frames, times[:-1], boxes, polys)
    tic = lesion_tic(frames, times, [None] * len(frames), polys)  # lesion never found: nothing read
    assert rim_aphe(tic).reason == "lesion_not_read" and marked_washout(tic).reason == "lesion_not_read"


def test_a_tracked_lesion_of_the_pipeline_is_measured():
    """``livus.infer.ceus.rim_and_washout_for_track``: Frames + a LesionTrack (outline polygons)."""
    from livus.infer.ceus import rim_and_washout_for_track
    from livus.types import Frame, Lesion, LesionTrack

    frames, times, _, polys = _clip(20.0, RIM_MARKED)
    track = LesionTrack(1, "clip.avi")
    clip = []
    for i, (px, t, poly) in enumerate(zip(frames, times, polys)):
        clip.append(Frame(px, "clip.avi", frame_index=i, time_s=float(t)))
        if i != 2:  # not found in one frame: that frame is left out of the curves
            track.observations.append((i, Lesion(1, 0.9, CENTRE, 40.0, 40.0, 0.0, polygon_px=poly)))
    m = rim_and_washout_for_track(clip, track, [float(t) for t in times])
    assert m[RIM_APHE].probability > 0.95 and m[MARKED_WASHOUT].probability > 0.95
    assert m[RIM_APHE].time_s == 18


HCC_MODEL = {"arterial_phase_hyperenhancement": 0.97, "washout_none": 0.02, "washout_late": 0.96, "washout_early": 0.02}


@pytest.mark.parametrize("curve,model,expected,assumptions", [
    (RIM_MARKED, HCC_MODEL, "LR-M", []),  # measured rim APHE (and marked washout)
    (HOMOGENEOUS_MILD, HCC_MODEL, "LR-5", []),  # measured non-rim, mild: the table, no assumption left
    # rim measured, but the model calls no APHE: rim APHE needs APHE; marked washout needs washout
    (RIM_MARKED, {**HCC_MODEL, "arterial_phase_hyperenhancement": 0.03, "washout_none": 0.96, "washout_late": 0.02},
     "LR-3", []),
    # marked washout alone (the arterial frames miss the ring: rim measured absent) sends to LR-M
    ([(3, 0, 0, 0), (18, 0.8, 0.8, 0.45), (60, 0.1, 0.1, 0.6), (90, 0.05, 0.05, 0.6)], HCC_MODEL, "LR-M", []),
])
def test_lr_m_rule_with_measured_rim_and_marked(curve, model, expected, assumptions):
    feats = {**model, **{k: f.probability for k, f in _measure(20.0, curve).items() if f.measured}}
    res = ceus_category(feats, 22.0)
    assert res.category == expected and res.assumptions == assumptions and not res.low_confidence
