"""What a case report says, as plain strings in one language (shared by HTML and PDF).

:func:`build_report_content` turns a :class:`~livus.types.CaseResult` and its frames into a
:class:`ReportContent`: identifiers, one :class:`LesionRow` per lesion (image, position, size,
malignancy, features, overlay path), the case assessment, the LI-RADS rows
(:mod:`livus.report.lirads_text`) and the disclaimer. The renderers
only lay these strings out, so both formats always say the same thing.

Every string is in the report's language: the frames' warnings (kept in English in
``results.jsonl``) are worded through :func:`livus.report.i18n.frame_warning`. A case that is not
assessable says so where the lesions and the advice would be (``no_lesion`` label, priority,
follow-up and reasons); a limited one starts its warnings with the limitation.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livus.report.i18n import (
    assessability_reason,
    feature_label,
    follow_up_label,
    frame_warning,
    location_label,
    priority_label,
    text,
)
from livus.report.background_text import background_line
from livus.report.lirads_text import lirads_rows
from livus.types import Assessability, CaseResult, FrameResult, Lesion

OverlayKey = Any  # (source, frame_index) tuple, "source#frame_index" or source


@dataclass
class LesionRow:
    """One lesion of the report (strings ready to print)."""

    number: int
    image: str  # file name and frame
    centre_px: str
    location: str  # coarse position on the image
    long_axis: str
    short_axis: str
    size_in_px: bool  # True when the pixel spacing is unknown (sizes in px)
    detection_score: str
    malignancy: str
    features: list[str]  # "低回声 0.90", sorted by confidence; a CEUS clip's lesion ends with its CEUS line
    overlay_path: Path | None = None


@dataclass
class ReportContent:
    """Everything a report prints, in ``language``."""

    language: str
    labels: dict[str, str]
    case_id: str
    generated_at: str
    sources: list[str]
    lesions: list[LesionRow]
    risk: str
    priority: str
    follow_up: str
    reasons: list[str]
    background: list[tuple[str, str]]
    warnings: list[str]
    model: str
    disclaimer: str
    any_size_in_px: bool = False
    assessability: str = ""  # e.g. "评估受限（声影遮挡）"; "" when the case was not judged
    lirads: list[tuple[str, str]] = field(default_factory=list)  # LI-RADS rows (livus.report.lirads_text)
    patient: list[tuple[str, str]] = field(default_factory=list)  # patient ID / name rows, when known


LABEL_KEYS = (
    "title", "decision_support_banner", "case_id", "generated_at", "sources", "n_lesions", "lesions", "lesion",
    "image", "position", "centre_px", "long_axis", "short_axis", "size", "detection_score", "malignancy",
    "detection_score_short", "malignancy_short", "features", "overlay", "no_lesion", "px_warning", "assessment", "risk", "priority", "follow_up", "reasons",
    "background", "warnings", "model", "disclaimer_title", "not_assessed", "assessability", "lirads",
)


def coarse_location(center_px: tuple[float, float], image_size_px: tuple[int, int]) -> str:
    """Which third of the image (vertically and horizontally) holds ``center_px``, as a key
    like ``upper-left`` (see :data:`livus.report.i18n.LOCATION_LABELS`)."""
    x, y = center_px
    width, height = image_size_px
    col = ("left", "centre", "right")[min(2, max(0, int(3 * x / max(width, 1))))]
    row = ("upper", "middle", "lower")[min(2, max(0, int(3 * y / max(height, 1))))]
    return f"{row}-{col}"


def _display_name(source: str) -> str:
    return Path(source).name or source


def _overlay_for(overlay_paths: dict[OverlayKey, Path], source: str, frame_index: int) -> Path | None:
    for key in ((source, frame_index), f"{source}#{frame_index}", source, _display_name(source)):
        if key in overlay_paths:
            return Path(overlay_paths[key])
    return None


def _fmt_mm_or_px(mm: float | None, px: float) -> tuple[str, bool]:
    if mm is None:
        return f"{px:.0f} px", True
    return f"{mm:.1f} mm", False


def _fmt_prob(p: float | None, language: str) -> str:
    return text("not_assessed", language) if p is None else f"{p:.2f}"


def _feature_strings(features: dict[str, float], language: str) -> list[str]:
    ranked = sorted(features.items(), key=lambda kv: -kv[1])
    return [f"{feature_label(name, language)} {p:.2f}" for name, p in ranked]


def ceus_line(ceus: dict[str, float], language: str) -> str | None:
    """One report line of a lesion's CEUS probabilities (``LesionTrack.ceus_features``), e.g.
    ``超声造影（仅用模拟造影数据训练）：动脉期高增强 0.97；廓清：晚期 0.95（无 0.03，早期 0.02）；
    包膜样增强 0.81（低可信度，试验性）``; ``None`` when there are none."""
    if not ceus:
        return None
    from livus.models.ceus import WASHOUT_CLASSES

    washout = sorted(((c, ceus[f"washout_{c}"]) for c in WASHOUT_CLASSES if f"washout_{c}" in ceus),
                     key=lambda kv: -kv[1])
    lp, rp, sep, space = ("（", "）", "，", "") if language == "zh" else ("(", ")", ", ", " ")

    def prob(name: str, p: float | None) -> str:
        return f"{name} {_fmt_prob(p, language)}"

    washout_txt = _fmt_prob(None, language)
    if washout:
        (top, p_top), rest = washout[0], washout[1:]
        washout_txt = prob(text(f"ceus_washout_{top}", language), p_top)
        if rest:
            washout_txt += space + lp + sep.join(prob(text(f"ceus_washout_{c}", language), p) for c, p in rest) + rp
    aphe = prob(feature_label("arterial_phase_hyperenhancement", language), ceus.get("arterial_phase_hyperenhancement"))
    capsule = (prob(feature_label("capsule_enhancement", language), ceus.get("capsule_enhancement"))
               + space + lp + text("ceus_low_confidence", language) + rp)
    return text("ceus_line", language).format(aphe=aphe, washout=washout_txt, capsule=capsule)


def _lesion_row(
    number: int,
    lesion: Lesion,
    source: str,
    frame_index: int,
    frame: FrameResult | None,
    malignancy: float | None,
    long_mm: float | None,
    short_mm: float | None,
    overlay_paths: dict[OverlayKey, Path],
    language: str,
    ceus: dict[str, float] | None = None,
) -> LesionRow:
    long_txt, long_px = _fmt_mm_or_px(long_mm, lesion.long_axis_px)
    short_txt, short_px = _fmt_mm_or_px(short_mm, lesion.short_axis_px)
    cx, cy = lesion.center_px
    location = location_label(coarse_location(lesion.center_px, frame.image_size_px), language) if frame else "—"
    return LesionRow(
        number=number,
        image=f"{_display_name(source)}, {text('frame', language)} {frame_index}",
        centre_px=f"({cx:.0f}, {cy:.0f})",
        location=location,
        long_axis=long_txt,
        short_axis=short_txt,
        size_in_px=long_px or short_px,
        detection_score=f"{lesion.score:.2f}",
        malignancy=_fmt_prob(malignancy, language),
        features=_feature_strings(lesion.features, language) + [x for x in [ceus_line(ceus or {}, language)] if x],
        overlay_path=_overlay_for(overlay_paths, source, frame_index),
    )


def _find_frame(frames: list[FrameResult], source: str, frame_index: int) -> FrameResult | None:
    same_source = [f for f in frames if f.source == source]
    for f in same_source:
        if f.frame_index == frame_index:
            return f
    return same_source[0] if same_source else None


def _lesion_rows(
    case: CaseResult, frames: list[FrameResult], overlay_paths: dict[OverlayKey, Path], language: str
) -> list[LesionRow]:
    rows: list[LesionRow] = []
    if case.tracks:
        for number, track in enumerate(case.tracks, start=1):
            if not track.observations:
                continue
            frame_index, lesion = max(track.observations, key=lambda obs: obs[1].score)
            frame = _find_frame(frames, track.source, frame_index)
            malignancy = track.malignancy if track.malignancy is not None else lesion.malignancy
            long_mm = track.long_axis_mm if track.long_axis_mm is not None else lesion.long_axis_mm
            short_mm = track.short_axis_mm if track.short_axis_mm is not None else lesion.short_axis_mm
            rows.append(_lesion_row(number, lesion, track.source, frame_index, frame, malignancy, long_mm,
                                    short_mm, overlay_paths, language, track.ceus_features))
        return rows
    # no tracking information: every lesion of every frame is listed
    for frame in frames:
        for lesion in frame.lesions:
            rows.append(_lesion_row(len(rows) + 1, lesion, frame.source, frame.frame_index, frame,
                                    lesion.malignancy, lesion.long_axis_mm, lesion.short_axis_mm,
                                    overlay_paths, language))
    return rows


def _yes_no(value: bool | None, language: str) -> str:
    if value is None:
        return text("unknown", language)
    return text("yes" if value else "no", language)


def _model_string(case: CaseResult, frames: list[FrameResult], language: str) -> str:
    model = case.model or (frames[0].model if frames else {})
    name = model.get("name", "unknown")
    version = model.get("version", "?")
    label = version if version.startswith(name) else f"{name} {version}"  # "livus-detector-2026…" names itself
    if "report_threshold" in model:  # a site's own operating point, not the shipped one
        return f"{label} · {text('site_report_threshold', language)} {model['report_threshold']}"
    return label


def assessability_text(a: Assessability | None, language: str) -> str:
    """``not assessable (blank image)`` / ``不可评估（空白图像）``; ``""`` for ``None``."""
    if a is None:
        return ""
    label = text(f"status_{a.status}", language)
    if not a.reasons:
        return label
    lp, rp, sep = ("（", "）", "；") if language == "zh" else (" (", ")", "; ")
    return label + lp + sep.join(assessability_reason(r, language) for r in a.reasons) + rp


def _frame_warnings(frames: list[FrameResult], language: str) -> list[str]:
    return [frame_warning(w, f.quality, language) for f in frames for w in f.warnings]


def build_report_content(
    case: CaseResult,
    frames: list[FrameResult],
    overlay_paths: dict[OverlayKey, Path] | None,
    language: str,
    generated_at: _dt.datetime | None = None,
) -> ReportContent:
    """Report strings for ``case`` in ``language`` (``zh`` or ``en``).

    ``overlay_paths`` maps ``(source, frame_index)`` (or ``"source#frame_index"``, or the source
    alone) to an overlay PNG. Values the case logic has not filled (risk, priority, follow-up)
    print as "not assessed"/"未评估".
    """
    overlay_paths = overlay_paths or {}
    rows = _lesion_rows(case, frames, overlay_paths, language)
    not_assessed = text("not_assessed", language)
    warnings = list(dict.fromkeys(list(case.warnings) + _frame_warnings(frames, language)))
    labels = {key: text(key, language) for key in LABEL_KEYS}
    not_assessable = case.assessability is not None and not case.assessability.usable
    if not_assessable:  # where the lesions would be listed: why they were not looked for
        labels["no_lesion"] = text("no_lesion_not_assessable", language)
    any_px = any(r.size_in_px for r in rows)
    if any_px:
        warnings.insert(0, text("px_warning", language))
    p = case.patient
    background = [
        (text("hbv", language), _yes_no(p.hbv, language)),
        (text("hcv", language), _yes_no(p.hcv, language)),
        (text("cirrhosis", language), _yes_no(p.cirrhosis, language)),
        (text("afp", language), text("unknown", language) if p.afp_ng_ml is None else f"{p.afp_ng_ml:g}"),
    ]
    image_line = None if not_assessable else background_line(case.liver_background, language)
    if image_line:  # next to the patient's own history, never instead of it
        background.append((text("image_background", language), image_line))
    when = generated_at or _dt.datetime.now().astimezone()
    return ReportContent(
        language=language,
        labels=labels,
        case_id=case.case_id,
        generated_at=when.strftime("%Y-%m-%d %H:%M"),
        sources=sorted({_display_name(s) for s in (case.sources or [f.source for f in frames])}),
        lesions=rows,
        risk=not_assessed if case.risk is None else f"{case.risk:.2f}",
        priority=(text("status_not_assessable", language) if not_assessable else not_assessed)
        if case.priority is None else priority_label(case.priority, language),
        follow_up=not_assessed if case.follow_up_months is None else follow_up_label(case.follow_up_months, language),
        reasons=list(case.reasons) or [not_assessed],
        background=background,
        warnings=warnings,
        model=_model_string(case, frames, language),
        disclaimer=text("disclaimer", language),
        any_size_in_px=any_px,
        assessability=assessability_text(case.assessability, language),
        lirads=lirads_rows(case.lirads, language),
        patient=[(text(key, language), value) for key, value in (("patient_id", p.patient_id),
                                                                  ("patient_name", p.patient_name)) if value],
    )
