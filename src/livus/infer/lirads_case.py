"""LI-RADS of a case: the pure rules of :mod:`livus.infer.lirads` applied to a case's frames and
lesion tracks, with the management of the LI-RADS table (:mod:`livus.infer.lirads_table`).

* **US LI-RADS v2017** for the B-mode part of the examination (stills and B-mode clips): one
  category and visualization score from the usable frames and the lesion tracks.
* **CEUS LI-RADS v2017** for the lesion tracks of CEUS clips (clips analysed with an injection
  time, ``livus.infer.ceus.add_ceus_features``): one category per observation; the case's
  CEUS summary is its most severe observation (:data:`~livus.infer.lirads.CEUS_SEVERITY`).

Each system applies to patients at risk of HCC only (cirrhosis, chronic HBV or HCV:
:func:`livus.infer.case.is_at_risk`); otherwise it is ``not_applicable``. A category that
cannot be given is ``not_categorised`` with a ``reason`` key (``not_assessable``,
``lesions_not_analysed``, ``size_unknown``, ``timing_unknown``, ``no_ceus_features``,
``no_ceus_model``, ``no_observation``). Everything is assigned by software and must be
confirmed by the reader (``note`` in ``case.json``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from livus.infer.assessability import result_assessability
from livus.infer.lirads import (
    CEUS_SYSTEM,
    US_SYSTEM,
    VERSION,
    CeusCategory,
    LiradsParams,
    UsObservation,
    VisualizationMeasures,
    ceus_category,
    most_severe,
    simple_cyst_evidence,
    us_category,
    visualization_measures,
    visualization_score,
)
from livus.infer.lirads_table import LiradsTable, Management, cached_lirads_table
from livus.types import Assessability, FrameResult, LesionTrack, PatientBackground

CATEGORISED, NOT_APPLICABLE, NOT_CATEGORISED = "categorised", "not_applicable", "not_categorised"


@dataclass
class LiradsAssessment:
    """The LI-RADS result of one system for a case (see the module docstring).

    ``observations``: per observation (lesion track) what decided its part (US: size, whether
    it counts and the benign evidence; CEUS: its category, the feature calls with their
    probabilities and confidence, the features that would change it, the assumptions)."""

    system: str
    status: str
    category: str | None = None
    reason: str | None = None
    candidates: list[str] = field(default_factory=list)
    visualization: str | None = None  # US only
    visualization_findings: list[tuple[str, str]] = field(default_factory=list)  # [(score, key)]
    measures: VisualizationMeasures | None = None  # US only
    deciding_observation: int | None = None  # track id
    observations: list[dict[str, Any]] = field(default_factory=list)
    management: Management | None = None
    low_confidence: bool = False
    version: str = VERSION
    # CEUS: each tracked lesion (the Lesion objects of the frames) with its observation entry, so
    # that a per-frame output (the DICOM SR) can give each lesion its own observation's category
    members: list[tuple[Any, dict[str, Any]]] = field(default_factory=list, repr=False, compare=False)

    def observation_of(self, lesion: Any) -> dict[str, Any] | None:
        """The observation entry of ``lesion`` (a ``Lesion`` of one of the case's frames, matched
        by identity to the tracks' lesions), or ``None`` when it is not one of this system's."""
        return next((o for les, o in self.members if les is lesion), None)

    def short(self) -> str:
        """A short language-neutral label (``summary.csv``): ``US-2 vis B``, ``LR-5 low confidence``,
        ``US LI-RADS not applicable``, ``CEUS LI-RADS not categorised: timing_unknown``."""
        if self.status == CATEGORISED:
            label = str(self.category)
            if self.visualization:
                label += f" vis {self.visualization}"
            return label + (" low confidence" if self.low_confidence else "")
        if self.status == NOT_APPLICABLE:
            return f"{self.system} not applicable"
        return f"{self.system} not categorised: {self.reason}"

    def to_json_dict(self, language: str = "en") -> dict[str, Any]:
        from livus.report.i18n import text

        return {
            "system": self.system,
            "version": self.version,
            "status": self.status,
            "category": self.category,
            "reason": self.reason,
            "reason_text": None if self.reason is None else lirads_reason_text(self.reason, self.candidates, language),
            "candidates": list(self.candidates),
            "visualization_score": self.visualization,
            "visualization_findings": [{"score": s, "finding": k, "text": text(k, language)}
                                       for s, k in self.visualization_findings],
            "measures": None if self.measures is None else self.measures.to_json_dict(),
            "deciding_observation": self.deciding_observation,
            "low_confidence": self.low_confidence,
            "observations": self.observations,
            "management": None if self.management is None else self.management.to_json_dict(language),
        }


@dataclass
class LiradsResult:
    """The LI-RADS of a case: US (B-mode part) and CEUS (contrast clips), either may be ``None``
    (no such part in the case)."""

    us: LiradsAssessment | None = None
    ceus: LiradsAssessment | None = None
    language: str = "en"

    @property
    def assessments(self) -> list[LiradsAssessment]:
        return [a for a in (self.us, self.ceus) if a is not None]

    def summary(self) -> str:
        """``summary.csv``'s ``lirads`` column: the systems' short labels joined by ``; ``."""
        return "; ".join(a.short() for a in self.assessments)

    def to_json_dict(self) -> dict[str, Any]:
        from livus.report.i18n import text

        return {"note": text("lirads_software_note", self.language),
                "us": None if self.us is None else self.us.to_json_dict(self.language),
                "ceus": None if self.ceus is None else self.ceus.to_json_dict(self.language)}


def lirads_reason_text(reason: str, candidates: Sequence[str], language: str) -> str:
    """The reason key worded in ``language`` (``size_unknown`` names the candidate categories)."""
    from livus.report.i18n import text

    sep = "、" if language == "zh" else " or "
    return text(f"lirads_reason_{reason}", language).format(candidates=sep.join(candidates))


# ----------------------------------------------------------------------------- observations


def track_features(track: LesionTrack) -> dict[str, float]:
    """Mean of each B-mode feature probability over the track's observations."""
    sums: dict[str, list[float]] = {}
    for _, les in track.observations:
        for k, v in les.features.items():
            sums.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def track_long_axis_mm(track: LesionTrack) -> float | None:
    """The track's long axis in mm (its own, else the largest of its observations'), or ``None``."""
    if track.long_axis_mm is not None:
        return float(track.long_axis_mm)
    sizes = [les.long_axis_mm for _, les in track.observations if les.long_axis_mm is not None]
    return float(max(sizes)) if sizes else None


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(float(v), nd)


# ----------------------------------------------------------------------------- US LI-RADS


def assess_us(patient: PatientBackground, frames: Sequence[FrameResult], tracks: Sequence[LesionTrack],
              table: LiradsTable, assessability: Assessability | None = None, analysed: bool = True,
              venous_thrombus: bool = False) -> LiradsAssessment:
    """US LI-RADS v2017 of the B-mode part of a case: its frames and lesion tracks."""
    from livus.infer.case import is_at_risk

    p = table.params
    if not is_at_risk(patient):
        return LiradsAssessment(US_SYSTEM, NOT_APPLICABLE, reason="not_at_risk")
    usable = [f for f in frames if result_assessability(f).usable]
    if (assessability is not None and not assessability.usable) or not usable:
        return LiradsAssessment(US_SYSTEM, NOT_CATEGORISED, reason="not_assessable")
    if not analysed:
        return LiradsAssessment(US_SYSTEM, NOT_CATEGORISED, reason="lesions_not_analysed")
    measures = visualization_measures(usable)
    vis, findings = visualization_score(measures, p)
    observations = [UsObservation(t.track_id, track_long_axis_mm(t), track_features(t), t.malignancy) for t in tracks]
    cat = us_category(observations, p, venous_thrombus)
    out = LiradsAssessment(US_SYSTEM, CATEGORISED if cat.category else NOT_CATEGORISED, cat.category, cat.reason,
                           cat.candidates, vis, findings, measures, cat.deciding)
    for o in observations:
        ev = simple_cyst_evidence(o.features, p, o.malignancy)
        out.observations.append({
            "id": o.id, "long_axis_mm": _r(o.long_axis_mm), "counts": not ev.definitely_benign,
            "definitely_benign": ev.kind, "evidence": {k: _r(v, 4) for k, v in ev.evidence.items()},
            "malignancy": _r(o.malignancy, 4)})
    if cat.category:
        out.management = table.management_for(cat.category, vis)
    return out


# ----------------------------------------------------------------------------- CEUS LI-RADS


CEUS_NOTE_REASONS = (("ceus_no_times", "timing_unknown"), ("ceus_no_model", "no_ceus_model"))


def _ceus_observation(track: LesionTrack, res: CeusCategory) -> dict[str, Any]:
    return {"id": track.track_id, "long_axis_mm": _r(track_long_axis_mm(track)), "category": res.category,
            "reason": res.reason, "candidates": res.candidates,
            "features": {c.name: c.to_json_dict() for c in res.calls},
            "low_confidence": res.low_confidence, "would_change": res.alternatives, "assumptions": res.assumptions,
            "measures": dict(track.ceus_measures)}


def assess_ceus(patient: PatientBackground, tracks: Sequence[LesionTrack], table: LiradsTable,
                notes: Iterable[str] = (), assessability: Assessability | None = None,
                analysed: bool = True) -> LiradsAssessment:
    """CEUS LI-RADS v2017 of a case's CEUS lesion tracks (``track.ceus_features``). ``notes``:
    the i18n keys of the clips' CEUS notes (``ceus_no_times``: no injection / frame time, so no
    category; ``ceus_no_model``)."""
    from livus.infer.case import is_at_risk

    if not is_at_risk(patient):
        return LiradsAssessment(CEUS_SYSTEM, NOT_APPLICABLE, reason="not_at_risk")
    if assessability is not None and not assessability.usable:
        return LiradsAssessment(CEUS_SYSTEM, NOT_CATEGORISED, reason="not_assessable")
    if not analysed:
        return LiradsAssessment(CEUS_SYSTEM, NOT_CATEGORISED, reason="lesions_not_analysed")
    notes = set(notes)
    note_reason = next((r for key, r in CEUS_NOTE_REASONS if key in notes), None)
    if not tracks:
        return LiradsAssessment(CEUS_SYSTEM, NOT_CATEGORISED, reason=note_reason or "no_observation")
    out = LiradsAssessment(CEUS_SYSTEM, NOT_CATEGORISED)
    results: list[tuple[LesionTrack, CeusCategory]] = []
    for t in tracks:
        res = ceus_category(t.ceus_features, track_long_axis_mm(t), table.params, timing_known=note_reason != "timing_unknown")
        if res.category is None and res.reason == "no_ceus_features" and note_reason:
            res.reason = note_reason
        results.append((t, res))
        out.observations.append(_ceus_observation(t, res))
        out.members += [(les, out.observations[-1]) for _, les in t.observations]
    worst = most_severe([r.category for _, r in results if r.category])
    if worst is None:
        first = results[0][1]
        out.reason, out.candidates = first.reason, list(first.candidates)
        return out
    track, res = next((t, r) for t, r in results if r.category == worst)
    out.status, out.category, out.deciding_observation = CATEGORISED, worst, track.track_id
    out.low_confidence, out.management = res.low_confidence, table.management_for(worst)
    return out


# ----------------------------------------------------------------------------- a case


class AnalysedInput(Protocol):
    """What :func:`case_lirads` reads of ``livus.infer.input_analysis.InputAnalysis``."""

    frames: list[Any]  # FrameAnalysis (``.result``: FrameResult)
    tracks: list[LesionTrack] | None  # a CEUS clip's tracks; None for stills and B-mode clips
    ceus_notes: list[tuple[str, dict[str, object]]]


def lirads_for_case(patient: PatientBackground, bmode_frames: Sequence[FrameResult],
                    bmode_tracks: Sequence[LesionTrack], ceus_tracks: Sequence[LesionTrack] | None,
                    table: LiradsTable | None = None, language: str = "en", assessability: Assessability | None = None,
                    ceus_notes: Iterable[str] = (), analysed: bool | None = None) -> LiradsResult:
    """US LI-RADS of the B-mode part (when there are B-mode frames) and CEUS LI-RADS of the CEUS
    tracks (``ceus_tracks`` not ``None``: the case has CEUS clips). ``analysed``: whether a
    detector looked for lesions (default: every B-mode frame has a model)."""
    table = table or cached_lirads_table(None)
    if analysed is None:
        analysed = all(f.model.get("name") != "none" for f in bmode_frames)
    us = assess_us(patient, bmode_frames, bmode_tracks, table, assessability, analysed) if bmode_frames else None
    ceus = None
    if ceus_tracks is not None:
        ceus = assess_ceus(patient, ceus_tracks, table, ceus_notes, assessability, analysed)
    return LiradsResult(us, ceus, language)


def case_lirads(case: Any, items: Sequence[AnalysedInput], language: str = "en",
                table_path: str | None = None) -> LiradsResult:
    """LI-RADS of a case of ``livus analyze`` (:class:`~livus.types.CaseResult` and its analysed
    inputs): B-mode frames and tracks from the stills and B-mode clips, CEUS tracks from the CEUS
    clips (inputs with ``tracks``). ``table_path``: the department's LI-RADS table (default: the
    shipped one)."""
    ceus_items = [it for it in items if it.tracks is not None]
    ceus_ids = {id(t) for it in ceus_items for t in it.tracks or []}
    bmode_frames = [fa.result for it in items if it.tracks is None for fa in it.frames]
    bmode_tracks = [t for t in case.tracks if id(t) not in ceus_ids]
    ceus_tracks = [t for t in case.tracks if id(t) in ceus_ids] if ceus_items else None
    analysed = all(fa.result.model.get("name") != "none" for it in items for fa in it.frames)
    notes = [k for it in ceus_items for k, _ in it.ceus_notes]
    return lirads_for_case(case.patient, bmode_frames, bmode_tracks, ceus_tracks, cached_lirads_table(table_path),
                           language, case.assessability, notes, analysed)


__all__ = ["LiradsAssessment", "LiradsResult", "LiradsParams", "assess_us", "assess_ceus", "lirads_for_case",
           "case_lirads", "lirads_reason_text", "track_features", "track_long_axis_mm"]
