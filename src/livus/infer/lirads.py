"""LI-RADS categories from what livus measures: pure functions, no I/O.

Two ACR algorithms, both version 2017:

* **US LI-RADS v2017** (surveillance B-mode ultrasound), one category per examination:
  ``US-1`` negative (no observation, or only definitely benign ones), ``US-2`` subthreshold
  (an observation < 10 mm that is not definitely benign), ``US-3`` positive (an observation
  >= 10 mm that is not definitely benign, or a new thrombus in a vein), and the visualization
  score ``A`` (no or minimal limitations), ``B`` (moderate), ``C`` (severe) of the examination.
* **CEUS LI-RADS v2017** (contrast-enhanced ultrasound), one category per observation:
  ``LR-TIV`` (tumour in vein, only when an input says so), ``LR-1`` / ``LR-2`` (definitely /
  probably benign, only when an input says so: livus does not recognise benign entities on
  CEUS), ``LR-M`` (rim APHE, early washout (< 60 s) or marked washout), else the diagnostic
  table (:data:`CEUS_TABLE`) from non-rim arterial phase hyperenhancement (APHE), late (>= 60 s)
  and mild washout and the size.

What livus can and cannot see:

* "Definitely benign" on B-mode only with strong evidence: a simple cyst, i.e. the classifier's
  ``echo_anechoic`` AND ``posterior_enhancement`` probabilities both at least
  :attr:`LiradsParams.benign_min_probability`, AND its malignancy probability known and at most
  :attr:`LiradsParams.benign_max_malignancy` (the feature heads learnt from simulated lesions
  only; on real AUL masses they called many malignant lesions anechoic, so a lesion the
  malignancy head doubts is never discounted). livus does not see a cyst's thin wall, and does
  not recognise haemangiomas or focal fat as definitely benign: those observations count.
* Sizes are the observation's long axis in mm; without pixel spacing the 10 mm threshold cannot
  be applied (no category, the reason is given; :func:`us_category`, :func:`ceus_category`).
* The CEUS heads (:mod:`livus.models.ceus`) give APHE, washout none / late / early and capsule.
  Rim vs non-rim APHE and marked vs mild washout are measured on the lesion's time-intensity
  curves (:mod:`livus.infer.ceus_tic`: ``rim_arterial_phase_hyperenhancement`` and
  ``washout_marked`` probabilities, thresholds in :class:`LiradsParams`). Where the clip does not
  allow it (lesion too small for a core and a ring, no arterial or washout frame) there is no
  probability: APHE is then taken as non-rim and washout as mild, and the result says so
  (``assumptions``). Capsule is not a CEUS LI-RADS feature and is not used.
* A feature probability ``p`` is called present at ``p >= 0.5`` (washout: the most probable
  class) and is *confident* when the called value has a probability of at least
  :attr:`LiradsParams.confident_probability`. A category is *low confidence* when calling a
  low-confidence feature the other way (a value of probability at least
  :attr:`LiradsParams.alternative_min_probability`) would change it; those features are named
  (:attr:`CeusCategory.alternatives`).

Visualization score (:func:`visualization_score`), from the measures of the examination's
usable B-mode frames (:func:`visualization_measures`): the share of frames of limited
assessability (shadowing, liver possibly only partly in view: the attenuation-like dim band of
the quality gate), the liver outline's area relative to the fan's (liver coverage), how deep in
the fan the liver reaches, and the quality gate's shadow share. Thresholds are in
:class:`LiradsParams` (starting points, not validated cut-offs: ``docs/lirads.md``).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from livus.types import FrameResult
from livus.vocab import WASHOUT_VALUES

US_SYSTEM = "US LI-RADS"
CEUS_SYSTEM = "CEUS LI-RADS"
VERSION = "v2017"
US_CATEGORIES = ("US-1", "US-2", "US-3")
VISUALIZATION_SCORES = ("A", "B", "C")
CEUS_CATEGORIES = ("LR-1", "LR-2", "LR-3", "LR-4", "LR-5", "LR-M", "LR-TIV")
# the observation that decides a case's CEUS summary: the first of this order that occurs
CEUS_SEVERITY = ("LR-TIV", "LR-M", "LR-5", "LR-4", "LR-3", "LR-2", "LR-1")
SIZE_BINS = ("<10", "10-19", ">=20")  # mm

APHE = "arterial_phase_hyperenhancement"
RIM_APHE = "rim_arterial_phase_hyperenhancement"  # measured by livus.infer.ceus_tic (or an input)
MARKED_WASHOUT = "washout_marked"  # likewise
WASHOUT = "washout"

# CEUS LI-RADS v2017 diagnostic table: (non-rim APHE, washout, size bin) → category. "late" is
# late (>= 60 s) AND mild washout; "none" is no washout of any type. Rows without APHE split at
# 20 mm, rows with non-rim APHE at 10 mm.
CEUS_TABLE: dict[tuple[bool, str, str], str] = {
    (False, "none", "<10"): "LR-3", (False, "none", "10-19"): "LR-3", (False, "none", ">=20"): "LR-3",
    (False, "late", "<10"): "LR-3", (False, "late", "10-19"): "LR-3", (False, "late", ">=20"): "LR-4",
    (True, "none", "<10"): "LR-3", (True, "none", "10-19"): "LR-4", (True, "none", ">=20"): "LR-4",
    (True, "late", "<10"): "LR-4", (True, "late", "10-19"): "LR-5", (True, "late", ">=20"): "LR-5",
}


@dataclass
class LiradsParams:
    """Evidence and visualization thresholds (a department may change them in the LI-RADS table,
    ``lirads.yaml``'s ``params``)."""

    us_threshold_mm: float = 10.0  # US-2 below, US-3 at or above
    # simple cyst = definitely benign: echo_anechoic AND posterior_enhancement at least this
    benign_min_probability: float = 0.9
    # ... and the lesion's malignancy probability at most this (unknown malignancy: no discount)
    benign_max_malignancy: float = 0.2
    present_probability: float = 0.5  # a binary CEUS feature is called present at this
    confident_probability: float = 0.8  # a called value is confident when its probability is at least this
    alternative_min_probability: float = 0.1  # other values of a low-confidence feature named from this probability
    # visualization (median over the usable frames; shares in [0, 1])
    coverage_b: float = 0.25  # liver outline area / fan area below this: B
    coverage_c: float = 0.10  # ... below this: C
    depth_b: float = 0.40  # the liver reaches less deep than this share of the fan depth: B
    shadow_b: float = 0.05  # quality gate's shadow share above this: B (one rib shadow)
    shadow_c: float = 0.15  # ... above this: C
    limited_share_b: float = 0.0  # share of usable frames of limited assessability above this: B
    limited_share_c: float = 0.999  # ... at or above this (all of them): C
    # CEUS rim APHE and marked washout measured on the time-intensity curves (livus.infer.ceus_tic;
    # grey levels / 255 of the contrast display, times in s after injection)
    tic_baseline_end_s: float = 8.0  # frames before this: the black level (contrast not arrived)
    rim_min_radius_px: float = 10.0  # lesion equivalent radius below this: too small for core + ring, not measured
    arterial_start_s: float = 10.0  # arterial phase window of the rim reading
    arterial_end_s: float = 45.0
    rim_min_contrast: float = 0.15  # (periphery - core) / (periphery - black) at the arterial peak: rim from this
    rim_min_hyper: float = 0.1  # (periphery - liver) / (liver - black): the periphery hyperenhances from this
    rim_scale: float = 0.05  # logistic scale of the rim margin → probability
    marked_min_radius_px: float = 5.0  # smaller lesions read as their blurred edge (biased to 'not marked'): not measured
    marked_start_s: float = 30.0  # window of the marked-washout reading (within 2 minutes)
    marked_end_s: float = 120.0
    marked_max_ratio: float = 0.6  # (lesion - black) / (liver - black): marked washout at or below this
    marked_scale: float = 0.05  # logistic scale of the marked-washout margin → probability
    washout_min_prior_ratio: float = 0.8  # washout needs an earlier relative enhancement at least this (about iso)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> LiradsParams:
        """Params from a (partial) mapping; unknown keys are an error."""
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"LI-RADS params: unknown key(s) {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in d.items()})


# ----------------------------------------------------------------------------- US LI-RADS


@dataclass
class UsObservation:
    """One observation of a B-mode examination (a lesion track)."""

    id: int
    long_axis_mm: float | None
    features: dict[str, float] = field(default_factory=dict)  # classifier probabilities
    malignancy: float | None = None


@dataclass
class BenignEvidence:
    """Whether an observation is definitely benign, and the probabilities behind the verdict."""

    definitely_benign: bool
    kind: str | None  # "simple_cyst" when definitely benign
    evidence: dict[str, float | None]


def simple_cyst_evidence(features: Mapping[str, float], params: LiradsParams | None = None,
                         malignancy: float | None = None) -> BenignEvidence:
    """Simple cyst (definitely benign) when ``echo_anechoic`` and ``posterior_enhancement`` are
    both at least ``benign_min_probability`` and ``malignancy`` (the classifier's probability)
    at most ``benign_max_malignancy``; a missing probability is no evidence."""
    p = params or LiradsParams()
    ev = {k: features.get(k) for k in ("echo_anechoic", "posterior_enhancement")}
    ok = all(v is not None and v >= p.benign_min_probability for v in ev.values())
    ok = ok and malignancy is not None and malignancy <= p.benign_max_malignancy
    return BenignEvidence(ok, "simple_cyst" if ok else None, {**ev, "malignancy": malignancy})


@dataclass
class UsCategory:
    """US category of an examination, or ``None`` with the ``reason`` (``size_unknown``) and the
    ``candidates`` it could be."""

    category: str | None
    deciding: int | None = None  # observation id that decides US-2 / US-3
    counted: list[int] = field(default_factory=list)  # observations that are not definitely benign
    benign: list[int] = field(default_factory=list)  # definitely benign ones (do not count)
    reason: str | None = None
    candidates: list[str] = field(default_factory=list)


def us_category(observations: Sequence[UsObservation], params: LiradsParams | None = None,
                venous_thrombus: bool = False) -> UsCategory:
    """US LI-RADS v2017 category of an examination (see the module docstring).

    The deciding observation is the largest one that counts. An observation that counts and
    has no size in mm leaves the category open (``US-2`` or ``US-3``) unless another one
    already makes it ``US-3``. ``venous_thrombus``: a new thrombus in a vein was seen (livus does
    not detect it; an input may say so)."""
    p = params or LiradsParams()
    benign = [o for o in observations if simple_cyst_evidence(o.features, p, o.malignancy).definitely_benign]
    benign_ids = {id(o) for o in benign}
    counted = [o for o in observations if id(o) not in benign_ids]
    out = UsCategory(None, counted=[o.id for o in counted], benign=[o.id for o in benign])
    sized = sorted((o for o in counted if o.long_axis_mm is not None), key=lambda o: -float(o.long_axis_mm or 0.0))
    if sized and float(sized[0].long_axis_mm or 0.0) >= p.us_threshold_mm:
        out.category, out.deciding = "US-3", sized[0].id
    elif venous_thrombus:
        out.category = "US-3"
    elif not counted:
        out.category = "US-1"
    elif len(sized) < len(counted):
        out.reason, out.candidates = "size_unknown", ["US-2", "US-3"]
    else:
        out.category, out.deciding = "US-2", sized[0].id
    return out


# ----------------------------------------------------------------------------- visualization


def polygon_area_px(polygon: Sequence[Sequence[float]] | None) -> float:
    """Area (px²) of a simple polygon ``[[x, y], ...]`` (shoelace); 0 for ``None`` or < 3 points."""
    if not polygon or len(polygon) < 3:
        return 0.0
    s = 0.0
    for (x0, y0), (x1, y1) in zip(polygon, list(polygon[1:]) + [polygon[0]]):
        s += x0 * y1 - x1 * y0
    return abs(s) / 2.0


def frame_visualization_measures(result: FrameResult) -> dict[str, float | None]:
    """Per-frame measures behind the visualization score: ``liver_coverage`` (liver outline area
    / fan area, at most 1; ``None`` without both outlines), ``liver_depth_share`` (how far down
    the fan the liver outline reaches: (liver bottom - fan top) / fan height), and the quality
    gate's ``shadow_share`` and ``band_to_near`` (``None`` when not measured)."""
    fan, liver = result.fan_polygon_px, result.liver_polygon_px
    coverage = depth = None
    fan_area = polygon_area_px(fan)
    if fan_area > 0 and liver and len(liver) >= 3:
        coverage = min(polygon_area_px(liver) / fan_area, 1.0)
        fan_y = [pt[1] for pt in fan or []]
        height = max(fan_y) - min(fan_y)
        if height > 0:
            depth = min(max((max(pt[1] for pt in liver) - min(fan_y)) / height, 0.0), 1.0)
    m = (result.quality or {}).get("measures") or {}
    return {"liver_coverage": coverage, "liver_depth_share": depth,
            "shadow_share": m.get("shadow_share"), "band_to_near": m.get("band_to_near")}


@dataclass
class VisualizationMeasures:
    """What the visualization score is derived from (medians over the frames that have them)."""

    n_frames: int  # usable B-mode frames of the examination
    n_limited: int  # of which of limited assessability
    limited_reasons: list[str] = field(default_factory=list)
    liver_coverage: float | None = None
    liver_depth_share: float | None = None
    shadow_share: float | None = None
    band_to_near: float | None = None

    @property
    def limited_share(self) -> float:
        return self.n_limited / self.n_frames if self.n_frames else 0.0

    def to_json_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 3)

        return {"frames": self.n_frames, "frames_limited": self.n_limited, "limited_reasons": list(self.limited_reasons),
                "liver_coverage": r(self.liver_coverage), "liver_depth_share": r(self.liver_depth_share),
                "shadow_share": r(self.shadow_share), "band_to_near": r(self.band_to_near)}


def _median(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return statistics.median(kept) if kept else None


def visualization_measures(frames: Sequence[FrameResult]) -> VisualizationMeasures:
    """Measures of the usable frames ``frames`` (give only the assessable / limited ones)."""
    from livus.infer.assessability import result_assessability

    per = [frame_visualization_measures(f) for f in frames]
    assess = [result_assessability(f) for f in frames]
    limited = [a for a in assess if a.status == "limited"]
    return VisualizationMeasures(
        n_frames=len(frames), n_limited=len(limited),
        limited_reasons=list(dict.fromkeys(r for a in limited for r in a.reasons)),
        liver_coverage=_median([m["liver_coverage"] for m in per]),
        liver_depth_share=_median([m["liver_depth_share"] for m in per]),
        shadow_share=_median([m["shadow_share"] for m in per]),
        band_to_near=_median([m["band_to_near"] for m in per]))


def visualization_score(m: VisualizationMeasures, params: LiradsParams | None = None) -> tuple[str, list[tuple[str, str]]]:
    """Visualization score ``A`` / ``B`` / ``C`` and its findings ``[(score, key), ...]`` (keys
    worded by ``livus.report.i18n``): the worst score any finding gives, ``A`` without one.

    C: every usable frame of limited assessability, liver coverage below ``coverage_c``, or
    shadow share above ``shadow_c``. B: some frames limited, coverage below ``coverage_b`` or
    not measured (no liver outline: the score cannot be A), liver depth share below ``depth_b``,
    shadow share above ``shadow_b``."""
    p = params or LiradsParams()
    found: list[tuple[str, str]] = []
    if m.n_frames and m.limited_share >= p.limited_share_c:
        found.append(("C", "vis_all_frames_limited"))
    elif m.limited_share > p.limited_share_b:
        found.append(("B", "vis_some_frames_limited"))
    if m.liver_coverage is None:
        found.append(("B", "vis_coverage_not_measured"))
    elif m.liver_coverage < p.coverage_c:
        found.append(("C", "vis_coverage_very_low"))
    elif m.liver_coverage < p.coverage_b:
        found.append(("B", "vis_coverage_low"))
    if m.liver_depth_share is not None and m.liver_depth_share < p.depth_b:
        found.append(("B", "vis_liver_shallow"))
    if m.shadow_share is not None and m.shadow_share > p.shadow_c:
        found.append(("C", "vis_shadowing_severe"))
    elif m.shadow_share is not None and m.shadow_share > p.shadow_b:
        found.append(("B", "vis_shadowing"))
    score = max((s for s, _ in found), default="A")  # "A" < "B" < "C"
    return score, found


# ----------------------------------------------------------------------------- CEUS LI-RADS


def size_bin(long_axis_mm: float) -> str:
    """``<10``, ``10-19`` or ``>=20`` (mm)."""
    return "<10" if long_axis_mm < 10.0 else ("10-19" if long_axis_mm < 20.0 else ">=20")


@dataclass(frozen=True)
class CeusFindings:
    """Decided CEUS features of one observation: the input of the CEUS LI-RADS algorithm."""

    aphe: bool  # arterial phase hyperenhancement (non-rim unless ``rim_aphe``)
    washout: str  # none | late (>= 60 s) | early (< 60 s)
    rim_aphe: bool = False
    marked_washout: bool = False
    tumor_in_vein: bool = False
    benign: str | None = None  # "definite" (LR-1) or "probable" (LR-2), from an input only


def ceus_table_category(f: CeusFindings, long_axis_mm: float) -> str:
    """CEUS LI-RADS v2017 category: LR-TIV, LR-1, LR-2 (inputs), LR-M (rim APHE, early or marked
    washout), else :data:`CEUS_TABLE`."""
    if f.washout not in WASHOUT_VALUES:
        raise ValueError(f"washout must be one of {WASHOUT_VALUES}, got {f.washout!r}")
    if f.tumor_in_vein:
        return "LR-TIV"
    if f.benign == "definite":
        return "LR-1"
    if f.benign == "probable":
        return "LR-2"
    if (f.aphe and f.rim_aphe) or f.washout == "early" or (f.marked_washout and f.washout != "none"):
        return "LR-M"
    return CEUS_TABLE[(bool(f.aphe), f.washout, size_bin(long_axis_mm))]


@dataclass
class FeatureCall:
    """A feature called from its probabilities: the value, its probability, all values'
    probabilities and whether the call is confident."""

    name: str
    value: Any  # bool, or a washout class
    probability: float
    probabilities: dict[str, float]
    confident: bool

    def to_json_dict(self) -> dict[str, Any]:
        return {"value": self.value, "probability": round(self.probability, 4),
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}, "confident": self.confident}


def call_binary(name: str, p: float, params: LiradsParams | None = None) -> FeatureCall:
    """Present when ``p >= present_probability``; confident when the called value's probability
    (``p`` or ``1 - p``) is at least ``confident_probability``."""
    q = params or LiradsParams()
    present = p >= q.present_probability
    prob = p if present else 1.0 - p
    return FeatureCall(name, present, prob, {"true": p, "false": 1.0 - p}, prob >= q.confident_probability)


def call_washout(probabilities: Mapping[str, float], params: LiradsParams | None = None) -> FeatureCall:
    """The most probable washout class (``none`` / ``late`` / ``early``), confident when its
    probability is at least ``confident_probability``."""
    q = params or LiradsParams()
    probs = {c: float(probabilities.get(c, 0.0)) for c in WASHOUT_VALUES}
    top = max(WASHOUT_VALUES, key=lambda c: probs[c])
    return FeatureCall(WASHOUT, top, probs[top], probs, probs[top] >= q.confident_probability)


@dataclass
class CeusCategory:
    """CEUS LI-RADS category of one observation with the calls behind it.

    ``category`` is ``None`` when it cannot be given (``reason``: ``timing_unknown``,
    ``no_ceus_features``, ``size_unknown`` with ``candidates``). ``alternatives``: the
    low-confidence features whose other value would change the category
    (``{"feature", "value", "probability", "category"}``); ``low_confidence`` when there is one.
    ``assumptions``: what was not measured for this observation (no probability: the clip did
    not allow it, :mod:`livus.infer.ceus_tic`) and was taken as the HCC-typical reading
    (``rim_aphe_not_measured``: APHE taken as non-rim; ``washout_degree_not_measured``: washout
    taken as mild)."""

    category: str | None
    calls: list[FeatureCall] = field(default_factory=list)
    reason: str | None = None
    candidates: list[str] = field(default_factory=list)
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def low_confidence(self) -> bool:
        return bool(self.alternatives)


def _categories_over_sizes(f: CeusFindings, long_axis_mm: float | None) -> list[str]:
    sizes = [long_axis_mm] if long_axis_mm is not None else [5.0, 15.0, 25.0]  # one per size bin
    return sorted({ceus_table_category(f, s) for s in sizes})


def ceus_category(ceus_features: Mapping[str, float] | None, long_axis_mm: float | None,
                  params: LiradsParams | None = None, timing_known: bool = True, tumor_in_vein: bool = False,
                  benign: str | None = None) -> CeusCategory:
    """CEUS LI-RADS v2017 category of one observation from its CEUS feature probabilities
    (``LesionTrack.ceus_features``: ``arterial_phase_hyperenhancement``, ``washout_none`` /
    ``washout_late`` / ``washout_early``; optional ``rim_arterial_phase_hyperenhancement`` and
    ``washout_marked``) and its long axis in mm.

    ``timing_known`` False (no injection time: washout timing cannot be read) or no features:
    no category. Without a size the category is given only when it is the same in every size
    bin. See :class:`CeusCategory` for the confidence and the assumptions."""
    q = params or LiradsParams()
    if not timing_known:
        return CeusCategory(None, reason="timing_unknown")
    feats = dict(ceus_features or {})
    if APHE not in feats or not any(f"washout_{c}" in feats for c in WASHOUT_VALUES):
        return CeusCategory(None, reason="no_ceus_features")
    calls = [call_binary(APHE, float(feats[APHE]), q),
             call_washout({c: feats.get(f"washout_{c}", 0.0) for c in WASHOUT_VALUES}, q)]
    assumptions = []
    for name, key in ((RIM_APHE, "rim_aphe_not_measured"), (MARKED_WASHOUT, "washout_degree_not_measured")):
        if name in feats:
            calls.append(call_binary(name, float(feats[name]), q))
        else:
            assumptions.append(key)
    values = {c.name: c.value for c in calls}

    def findings(v: Mapping[str, Any]) -> CeusFindings:
        return CeusFindings(aphe=bool(v[APHE]), washout=str(v[WASHOUT]), rim_aphe=bool(v.get(RIM_APHE, False)),
                            marked_washout=bool(v.get(MARKED_WASHOUT, False)), tumor_in_vein=tumor_in_vein,
                            benign=benign)

    cats = _categories_over_sizes(findings(values), long_axis_mm)
    out = CeusCategory(cats[0] if len(cats) == 1 else None, calls, assumptions=assumptions)
    if out.category is None:
        out.reason, out.candidates = "size_unknown", cats
        return out
    for call in calls:
        if call.confident:
            continue
        others = [v for v in ((not call.value,) if isinstance(call.value, bool) else WASHOUT_VALUES) if v != call.value]
        for other in others:
            p_other = call.probabilities["true" if other is True else "false"] if isinstance(other, bool) \
                else call.probabilities[other]
            alt = _categories_over_sizes(findings({**values, call.name: other}), long_axis_mm)
            if alt != cats and p_other >= q.alternative_min_probability:
                out.alternatives.append({"feature": call.name, "value": other, "probability": round(p_other, 4),
                                         "category": alt[0] if len(alt) == 1 else "/".join(alt)})
    return out


def ceus_table_cells() -> list[tuple[bool, str, str, str]]:
    """Every cell of :data:`CEUS_TABLE` as ``(aphe, washout, size bin, category)`` (for tests)."""
    return [(a, w, s, CEUS_TABLE[(a, w, s)]) for a, w, s in product((False, True), ("none", "late"), SIZE_BINS)]


def most_severe(categories: Sequence[str]) -> str | None:
    """The first of :data:`CEUS_SEVERITY` among ``categories`` (``None`` when empty)."""
    return next((c for c in CEUS_SEVERITY if c in categories), None)
