"""What the study page shows of a case, worded in both page languages (zh, en).

``case.json`` is written once, in the uploader's language; a colleague may read the study in the
other one. The page therefore gets each case's texts in both languages and picks its own:

* **assessability**: status and reason keys (the page words them with ``/api/labels``);
* **reasons**: re-worded from the rule ids (``rules``) and lesions of ``case.json`` with the
  rules table (:func:`livus.infer.case.rule_reasons`). The re-worded lines are used only when
  they reproduce the stored lines in the stored language (the table may have changed since the
  analysis); otherwise the stored lines are shown as they are;
* **warnings**: the case warnings livus knows (limited assessment, no rule applies, no
  detector, the counts of not-assessable / limited frames) re-worded; any other warning (clip
  quality, CEUS notes) as stored;
* **LI-RADS**: the ``lirads`` block worded by :func:`livus.report.lirads_text.lirads_rows` (the
  report's own rows), per system: title (ACR name and version), category or why there is none,
  the rows behind it, and the note that software assigned it.

Frame warnings (English in ``results.jsonl``) are worded by
:func:`livus.report.i18n.frame_warning`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from livus.infer.assessability import frame_assessability
from livus.infer.case import CaseRules, lesions_line, limited_note, not_assessable_reason, rule_reasons
from livus.infer.case_notes import frame_count_warnings
from livus.infer.lirads import VERSION, VisualizationMeasures
from livus.infer.lirads_case import LiradsAssessment, LiradsResult
from livus.infer.lirads_table import LiradsTable, Management
from livus.report.i18n import ASSESSABILITY_REASONS, LANGUAGES, QUALITY_LABELS, STRINGS, follow_up_label, frame_warning, text
from livus.report.lirads_text import lirads_rows
from livus.types import Assessability, LesionTrack


PAGE_STRINGS = ("status_assessable", "status_limited", "status_not_assessable", "assessability",
                "not_assessable_advice", "no_lesion_not_assessable", "lirads")


def page_labels() -> dict[str, Any]:
    """Display names for the page (``/api/labels``): assessability statuses and the not-assessable
    advice, the LI-RADS heading (``strings``), and the assessability reasons (``reasons``)."""
    return {"strings": {k: STRINGS[k] for k in PAGE_STRINGS}, "reasons": {**QUALITY_LABELS, **ASSESSABILITY_REASONS}}


def case_assessability(case: dict[str, Any]) -> Assessability | None:
    """The case's assessability from its ``case.json`` (``None``: not judged)."""
    a = case.get("assessability")
    return None if not a else Assessability.from_json_dict(a)


def result_assessability_json(result: dict[str, Any]) -> dict[str, Any]:
    """A frame result's assessability (stored, else from its quality verdict) as JSON."""
    a = result.get("assessability")
    return (Assessability.from_json_dict(a) if a else frame_assessability(result.get("quality"))).to_json_dict()


def frame_warnings(result: dict[str, Any]) -> dict[str, list[str]]:
    """A frame result's warnings in each language."""
    return {lang: [frame_warning(w, result.get("quality"), lang) for w in result.get("warnings") or []]
            for lang in LANGUAGES}


def _tracks(case: dict[str, Any]) -> list[LesionTrack]:
    return [LesionTrack(track_id=int(t["track_id"]), source=str(t.get("source", "")), malignancy=t.get("malignancy"),
                        long_axis_mm=t.get("long_axis_mm")) for t in case.get("lesions") or []]


def _reasons(case: dict[str, Any], rules: CaseRules) -> dict[str, list[str]]:
    stored = list(case.get("reasons") or [])
    a = case_assessability(case)
    if a is not None and not a.usable:
        worded = {lang: [not_assessable_reason(a, lang)] for lang in LANGUAGES}
    else:
        by_id = {r.id: r for r in rules.rules}
        ids = list(case.get("rules") or [])
        if not ids or any(i not in by_id for i in ids):
            return {lang: stored for lang in LANGUAGES}
        tracks = _tracks(case)
        worded = {lang: rule_reasons([by_id[i] for i in ids], lang) + [lesions_line(tracks, lang)] for lang in LANGUAGES}
    if stored not in worded.values():  # not what was reported then: show what was reported
        return {lang: stored for lang in LANGUAGES}
    return worded


def _warnings(case: dict[str, Any], frames: Sequence[Assessability]) -> dict[str, list[str]]:
    a = case_assessability(case)
    known = [{lang: text(k, lang) for lang in LANGUAGES} for k in ("no_rule_applies", "no_detector_case")]
    counts = {lang: frame_count_warnings(list(frames), lang) for lang in LANGUAGES}
    known += [dict(zip(LANGUAGES, lines)) for lines in zip(*(counts[lang] for lang in LANGUAGES))]
    if a is not None and a.status == "limited":
        known.append({lang: limited_note(a, lang) for lang in LANGUAGES})
    out: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    for w in case.get("warnings") or []:
        match = next((k for k in known if w in k.values()), None)
        for lang in LANGUAGES:
            out[lang].append(match[lang] if match else w)
    return out


def _stored_language(lirads: dict[str, Any]) -> str | None:
    return next((lang for lang in LANGUAGES if lirads.get("note") == text("lirads_software_note", lang)), None)


def _management(m: dict[str, Any] | None, table: LiradsTable, stored: str | None) -> Management | None:
    """The table's entry when it still says what was reported, else the reported text as it is."""
    if not m:
        return None
    entry = table.management.get(str(m.get("key")))
    if entry is not None and stored is not None and entry.text(stored) == m.get("action"):
        return entry
    action = str(m.get("action") or "")
    return Management(str(m.get("key")), m.get("follow_up_months"), {lang: action for lang in LANGUAGES})


def _assessment(d: dict[str, Any], table: LiradsTable, stored: str | None) -> LiradsAssessment:
    """A :class:`LiradsAssessment` back from its ``case.json`` form."""
    m = d.get("measures")
    measures = None if not m else VisualizationMeasures(
        int(m.get("frames") or 0), int(m.get("frames_limited") or 0), list(m.get("limited_reasons") or []),
        m.get("liver_coverage"), m.get("liver_depth_share"), m.get("shadow_share"), m.get("band_to_near"))
    return LiradsAssessment(
        system=str(d["system"]), status=str(d["status"]), category=d.get("category"), reason=d.get("reason"),
        candidates=list(d.get("candidates") or []), visualization=d.get("visualization_score"),
        visualization_findings=[(f["score"], f["finding"]) for f in d.get("visualization_findings") or []],
        measures=measures, deciding_observation=d.get("deciding_observation"),
        observations=list(d.get("observations") or []), management=_management(d.get("management"), table, stored),
        low_confidence=bool(d.get("low_confidence")), version=str(d.get("version") or VERSION))


def lirads_view(lirads: dict[str, Any] | None, table: LiradsTable, language: str) -> dict[str, Any] | None:
    """The page's LI-RADS of a case: ``{"systems": [{system, version, status, category,
    low_confidence, title, summary, rows: [[label, value], ...]}], "note"}``; ``None`` when the
    case has none."""
    if not lirads or not (lirads.get("us") or lirads.get("ceus")):
        return None
    stored = _stored_language(lirads)
    systems = []
    for key in ("us", "ceus"):
        if not lirads.get(key):
            continue
        a = _assessment(lirads[key], table, stored)
        rows = lirads_rows(LiradsResult(**{key: a}), language)  # (title, summary), ..., (note label, note)
        systems.append({"system": a.system, "version": a.version, "status": a.status, "category": a.category,
                        "low_confidence": a.low_confidence, "title": rows[0][0], "summary": rows[0][1],
                        "rows": [list(r) for r in rows[1:-1]]})
    return {"systems": systems, "note": text("lirads_software_note", language)}


def _follow_up(case: dict[str, Any], language: str) -> str | None:
    months = case.get("follow_up_months")
    return None if months is None else follow_up_label(float(months), language)


def case_view(case: dict[str, Any], rules: CaseRules, table: LiradsTable,
              frames: Sequence[Assessability] = ()) -> dict[str, Any]:
    """One case of ``case.json`` for the page: assessability, and per language its reasons,
    warnings, follow-up interval in words and LI-RADS. ``frames``: the assessability of the case's analysed frames (the
    warnings that count them are re-worded when they match)."""
    a = case_assessability(case)
    reasons, warnings = _reasons(case, rules), _warnings(case, frames)
    return {"assessability": None if a is None else a.to_json_dict(),
            "text": {lang: {"reasons": reasons[lang], "warnings": warnings[lang], "follow_up": _follow_up(case, lang),
                            "lirads": lirads_view(case.get("lirads"), table, lang)} for lang in LANGUAGES}}


def study_assessability(case_json: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The assessability of each case of a study (``[]`` before analysis or when not judged)."""
    cases = (case_json or {}).get("cases") or []
    return [a.to_json_dict() for c in cases if (a := case_assessability(c)) is not None]


def case_frames(case: dict[str, Any], n_cases: int, results: Sequence[dict[str, Any]]) -> list[Assessability]:
    """The assessability of a case's frames: the results from its ``sources`` (all of the study's
    when it is the study's only case)."""
    sources = set(case.get("sources") or [])
    return [Assessability.from_json_dict(result_assessability_json(r)) for r in results
            if n_cases == 1 or r.get("source") in sources]
