"""Rim APHE and marked washout of one lesion, measured on its time–intensity curves (TICs).

CEUS LI-RADS v2017 sends an observation to LR-M for *rim* arterial phase hyperenhancement
(APHE most pronounced in the observation's periphery) or *marked* washout (within about 2
minutes after the injection the observation becomes "punched out", nearly devoid of
enhancement, much darker than the liver). The CEUS heads (:mod:`livus.models.ceus`) give APHE
and washout timing but not these two degrees, and no library computes CEUS LI-RADS features,
so they are measured here by hand from the clip itself, with the lesion's outline in each frame
(a track's box and polygon, original pixels) and the liver around it:

* regions per frame, by the normalised radius ρ of :mod:`livus.models.ceus` (0 at the deepest
  point of the outline, 1 on it, >1 outside; the same convention as the model's measurements):
  **core** ρ < ``CORE_RHO``, **periphery** ``PERIPHERY_RHO`` (a ring just inside the outline,
  away from the blurred edge), **lesion** ρ < 0.95 (short of the edge), **liver** the ring ``RING`` outside the
  lesion (median of the non-zero pixels); each is a mean grey level (grey / 255) → one TIC per
  region;
* **black level** ``B``: the liver ring's grey in frames before the contrast arrives (times
  below ``LiradsParams.tic_baseline_end_s``; tissue is suppressed in contrast mode), else 0;
* **rim APHE**, at the arterial-phase frame (``arterial_start_s``–``arterial_end_s``) where the
  periphery is brightest: rim contrast ``(P - C) / (P - B)`` (how much darker the core is than the
  periphery, as a share of the periphery's enhancement) at least ``rim_min_contrast`` AND the
  periphery hyperenhancing, ``(P - L) / (L - B)`` at least ``rim_min_hyper``;
* **marked washout**: the lowest relative enhancement of the lesion ``(lesion - B) / (liver - B)``
  over the frames ``marked_start_s``–``marked_end_s`` (within 2 minutes) at most
  ``marked_max_ratio``, after an earlier enhancement: its highest relative enhancement from
  ``arterial_start_s`` up to that frame at least ``washout_min_prior_ratio`` (a lesion that never
  enhanced, such as a cyst, is dark but has not washed out; with no earlier frame it is not
  measured).

Grey levels of a contrast display are log-compressed, so these are ratios of displayed grey,
not of contrast concentration; the thresholds are starting points (``lirads.yaml`` ``params``),
checked on simulated clips only (``docs/lirads.md``). The call's probability is a logistic of its
margin to the threshold (``(value - threshold) / scale``; for rim APHE the smaller of its two
margins), so a value near the threshold is a low-confidence call in the CEUS LI-RADS rule.

**Not measured** (no probability, the rule keeps its assumption and says so) when the lesion is
too small for a core and a ring (median equivalent radius below ``rim_min_radius_px``; for
marked washout below ``marked_min_radius_px``: a tiny lesion reads as its blurred edge, which
would bias it towards "not marked"), the clip
has no frame in the phase's window, or the liver around the lesion cannot be read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livus.infer.lirads import MARKED_WASHOUT, RIM_APHE, LiradsParams
from livus.models.ceus import RING, Box, Polygon, _grey, _norm_radius  # the model's ρ convention

CORE_RHO = 0.4  # core: ρ below this (the inner 40 % of the radius)
PERIPHERY_RHO = (0.6, 0.95)  # periphery ring inside the outline, short of the blurred edge


@dataclass(frozen=True)
class RegionGrey:
    """Mean grey levels (grey / 255) of one frame's lesion regions (``lesion``: the whole lesion
    short of its blurred edge, ρ < ``PERIPHERY_RHO[1]``) and the lesion's equivalent radius
    ``radius_px`` (original pixels: the disc of the outline's area); ``liver`` (the median of the
    ring around it) is ``None`` when no liver pixel was found."""

    core: float
    periphery: float
    lesion: float
    liver: float | None
    radius_px: float


def frame_regions(frame: np.ndarray, box: Box, polygon: Polygon | None = None) -> RegionGrey | None:
    """:class:`RegionGrey` of one lesion in one contrast frame (``frame`` uint8 grey, ``box``
    ``[x0, y0, x1, y1]`` and optional outline, original pixels); ``None`` when the lesion region
    is empty (e.g. outside the frame). A region without a pixel (a lesion of a few pixels) takes
    the whole lesion's mean: such a lesion is below ``rim_min_radius_px`` and is not read for a rim."""
    g = _grey(frame)
    rho, win = _norm_radius(g.shape[:2], box, polygon, 1.0 + 2 * (RING[1] - 1.0))
    v = g[win].astype(np.float32) / 255.0
    inside = v[rho < 1.0]
    if inside.size == 0:
        return None

    def mean(sel: np.ndarray) -> float:
        return float(v[sel].mean()) if sel.any() else float(inside.mean())

    liver = v[(rho >= RING[0]) & (rho < RING[1]) & (v > 0)]
    return RegionGrey(mean(rho < CORE_RHO), mean((rho >= PERIPHERY_RHO[0]) & (rho < PERIPHERY_RHO[1])),
                      mean(rho < PERIPHERY_RHO[1]), float(np.median(liver)) if liver.size else None,
                      math.sqrt(inside.size / math.pi))


@dataclass
class Tic:
    """Time–intensity curves of one lesion: per frame (times in s after injection, ascending)
    the :class:`RegionGrey` values; frames where the regions could not be read are left out."""

    times_s: list[float] = field(default_factory=list)
    regions: list[RegionGrey] = field(default_factory=list)

    def black(self, baseline_end_s: float) -> float:
        """The black level: median liver grey of the frames before ``baseline_end_s``, else 0."""
        pre = [r.liver for t, r in zip(self.times_s, self.regions) if t < baseline_end_s and r.liver is not None]
        return float(np.median(pre)) if pre else 0.0

    @property
    def radius_px(self) -> float:
        return float(np.median([r.radius_px for r in self.regions])) if self.regions else 0.0


def lesion_tic(frames: Sequence[np.ndarray], times_s: Sequence[float], boxes_px: Sequence[Box | None],
               polygons_px: Sequence[Polygon | None] | None = None) -> Tic:
    """The lesion's :class:`Tic` from contrast frames (uint8 grey, original pixels), their times
    after injection (s) and the lesion's box (``None`` where it was not found) and optional
    outline per frame."""
    polygons_px = [None] * len(boxes_px) if polygons_px is None else polygons_px
    if not (len(frames) == len(times_s) == len(boxes_px) == len(polygons_px)):
        raise ValueError("frames, times_s, boxes_px (and polygons_px) must have the same length")
    tic = Tic()
    for i in sorted(range(len(frames)), key=lambda k: float(times_s[k])):
        if boxes_px[i] is None:
            continue
        r = frame_regions(frames[i], boxes_px[i], polygons_px[i])
        if r is not None:
            tic.times_s.append(float(times_s[i]))
            tic.regions.append(r)
    return tic


@dataclass
class MeasuredFeature:
    """One measured feature: ``probability`` of presence (``None``: not measured, ``reason`` says
    why), the measured ``value`` and its ``threshold`` (the feature is present at or beyond it),
    ``margin`` (signed, in the value's units: > 0 present) and the frame time it was read at."""

    name: str
    probability: float | None
    value: float | None = None
    threshold: float | None = None
    margin: float | None = None
    time_s: float | None = None
    reason: str | None = None
    details: dict[str, float] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.probability is not None

    def to_json_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        return {"measured": self.measured, "probability": r(self.probability), "value": r(self.value),
                "threshold": r(self.threshold), "margin": r(self.margin), "time_s": r(self.time_s),
                "reason": self.reason, "details": {k: r(v) for k, v in self.details.items()}}


def margin_probability(margin: float, scale: float) -> float:
    """Logistic of ``margin / scale`` (0.5 at the threshold)."""
    z = max(min(margin / max(scale, 1e-9), 50.0), -50.0)
    return 1.0 / (1.0 + math.exp(-z))


def _not_measured(name: str, reason: str) -> MeasuredFeature:
    return MeasuredFeature(name, None, reason=reason)


def rim_aphe(tic: Tic, params: LiradsParams | None = None) -> MeasuredFeature:
    """Rim APHE from the TICs (see the module docstring): at the arterial-phase frame with the
    brightest periphery, rim contrast ``(P - C) / (P - B)`` against ``rim_min_contrast`` and
    periphery hyperenhancement ``(P - L) / (L - B)`` against ``rim_min_hyper``."""
    p = params or LiradsParams()
    if not tic.regions:
        return _not_measured(RIM_APHE, "lesion_not_read")
    if tic.radius_px < p.rim_min_radius_px:
        return _not_measured(RIM_APHE, "lesion_too_small")
    arterial = [(t, r) for t, r in zip(tic.times_s, tic.regions)
                if p.arterial_start_s <= t <= p.arterial_end_s and r.liver is not None]
    if not arterial:
        return _not_measured(RIM_APHE, "no_arterial_frames")
    black = tic.black(p.tic_baseline_end_s)
    t, r = max(arterial, key=lambda tr: tr[1].periphery)
    liver = float(r.liver or 0.0)
    if liver - black <= 1e-6:  # the liver has not enhanced: no reference for hyperenhancement
        return _not_measured(RIM_APHE, "liver_not_enhanced")
    contrast = (r.periphery - r.core) / (r.periphery - black) if r.periphery - black > 1e-6 else 0.0
    hyper = (r.periphery - liver) / (liver - black)
    margin = min(contrast - p.rim_min_contrast, hyper - p.rim_min_hyper)
    return MeasuredFeature(RIM_APHE, margin_probability(margin, p.rim_scale), contrast, p.rim_min_contrast, margin, t,
                           details={"periphery_hyperenhancement": hyper, "black": black, "periphery": r.periphery,
                                    "core": r.core, "liver": liver})


def marked_washout(tic: Tic, params: LiradsParams | None = None) -> MeasuredFeature:
    """Marked washout from the TICs (see the module docstring): the lowest relative enhancement
    ``(lesion - B) / (liver - B)`` in ``marked_start_s``–``marked_end_s`` against
    ``marked_max_ratio`` (present at or below it) after a relative enhancement of at least
    ``washout_min_prior_ratio`` since ``arterial_start_s``; the probability follows the smaller margin."""
    p = params or LiradsParams()
    if not tic.regions:
        return _not_measured(MARKED_WASHOUT, "lesion_not_read")
    if tic.radius_px < p.marked_min_radius_px:
        return _not_measured(MARKED_WASHOUT, "lesion_too_small")
    black = tic.black(p.tic_baseline_end_s)
    late = [(t, (r.lesion - black) / (float(r.liver) - black)) for t, r in zip(tic.times_s, tic.regions)
            if p.marked_start_s <= t <= p.marked_end_s and r.liver is not None and float(r.liver) - black > 1e-6]
    if not late:
        return _not_measured(MARKED_WASHOUT, "no_washout_frames")
    t, ratio = min(late, key=lambda tr: tr[1])
    # washout follows enhancement: the lesion's brightest relative enhancement from the arterial
    # phase up to that frame (a lesion that never enhanced, e.g. a cyst, is dark, not washed out)
    before = [(r.lesion - black) / (float(r.liver) - black) for tt, r in zip(tic.times_s, tic.regions)
              if p.arterial_start_s <= tt < t and r.liver is not None and float(r.liver) - black > 1e-6]
    if not before:  # the first frame seen is the darkest: whether it enhanced before is unknown
        return _not_measured(MARKED_WASHOUT, "no_enhancement_frames")
    prior = max(before)
    margin = min(p.marked_max_ratio - ratio, prior - p.washout_min_prior_ratio)
    return MeasuredFeature(MARKED_WASHOUT, margin_probability(margin, p.marked_scale), ratio, p.marked_max_ratio,
                           margin, t, details={"black": black, "frames": float(len(late)), "prior_enhancement": prior})


def measure_rim_and_washout(frames: Sequence[np.ndarray], times_s: Sequence[float], boxes_px: Sequence[Box | None],
                            polygons_px: Sequence[Polygon | None] | None = None,
                            params: LiradsParams | None = None) -> dict[str, MeasuredFeature]:
    """Both measured features of one lesion, keyed ``RIM_APHE`` and ``MARKED_WASHOUT`` (see
    :func:`lesion_tic` for the inputs)."""
    tic = lesion_tic(frames, times_s, boxes_px, polygons_px)
    return {RIM_APHE: rim_aphe(tic, params), MARKED_WASHOUT: marked_washout(tic, params)}


def measured_probabilities(features: dict[str, MeasuredFeature]) -> dict[str, float]:
    """The probabilities of the measured features only (for ``LesionTrack.ceus_features``)."""
    return {k: float(f.probability) for k, f in features.items() if f.probability is not None}


__all__ = ["CORE_RHO", "PERIPHERY_RHO", "RegionGrey", "Tic", "MeasuredFeature", "frame_regions", "lesion_tic",
           "margin_probability", "rim_aphe", "marked_washout", "measure_rim_and_washout", "measured_probabilities"]
