"""Which cases get an HTML/PDF report (``AnalyzeConfig.reports`` / ``livus analyze --reports``).

``all`` (default): every case. ``none``: no case. ``findings``: only the cases that need a
reader's attention (:func:`needs_report`); the rule errs on writing the report: a case is left
without one only when every item below is clear. ``case.json``, ``summary.csv``,
``results.jsonl``, the overlays and, for DICOM inputs, the DICOM SR/SEG are written for every
case whatever the setting. The web service always writes every report.
"""

from __future__ import annotations

from typing import Any

from livus.config import REPORT_MODES, check_report_mode
from livus.types import CaseResult

__all__ = ["REPORT_MODES", "check_report_mode", "needs_report", "writes_report"]

# LI-RADS results that need no reader's attention: negative with no or a good visualization score
_QUIET_US_CATEGORY = "US-1"
_QUIET_VISUALIZATION = (None, "A")
_QUIET_STEATOSIS = (None, "none", "mild")


def needs_report(case: CaseResult) -> list[str]:
    """Why ``case`` needs a reader's attention (empty: it does not). A report is needed when:

    * a lesion was found (any lesion track);
    * the priority is not ``routine`` (``soon`` / ``urgent``, or none: no rule applied, lesions
      not looked for, or not assessable);
    * the case is not fully assessable (``limited`` / ``not_assessable``, or not judged);
    * the case has any warning (limited quality, frames not assessable, no model, clip/CEUS notes);
    * a LI-RADS result other than ``US-1`` with visualization score A (or none): US-2/US-3, a
      visualization score B or C, low confidence, not categorised, or any CEUS category;
    * the image-derived liver background states signs of cirrhosis or moderate/severe steatosis
      (what the report prints of it).
    """
    why = []
    if case.tracks:
        why.append("lesion")
    if case.priority != "routine":
        why.append(f"priority {case.priority or 'none'}")
    if case.assessability is None or case.assessability.status != "assessable":
        why.append("assessability " + (case.assessability.status if case.assessability else "not judged"))
    if case.warnings:
        why.append("warning")
    if not _lirads_quiet(case.lirads):
        why.append("lirads")
    if _background_finding(case.liver_background):
        why.append("liver background")
    return why


def writes_report(mode: str, case: CaseResult) -> bool:
    """Whether the HTML/PDF report of ``case`` is written under the setting ``mode``."""
    check_report_mode(mode)
    return mode == "all" or (mode == "findings" and bool(needs_report(case)))


def _lirads_quiet(lirads: Any) -> bool:
    """True when every LI-RADS assessment of the case is "not applicable" or a negative US-1 with
    visualization A (or none) at full confidence; no LI-RADS at all counts as quiet."""
    if lirads is None:
        return True
    for a in lirads.assessments:
        if a.status == "not_applicable":
            continue
        if not (a.status == "categorised" and a.category == _QUIET_US_CATEGORY
                and a.visualization in _QUIET_VISUALIZATION and not a.low_confidence):
            return False
    return True


def _background_finding(background: Any) -> bool:
    """True when the liver background (``LiverBackground`` or its JSON dict) states what the
    report prints as a finding (``livus.report.background_text``): signs of cirrhosis, or
    moderate/severe steatosis. The fibrosis class and the surface label are not printed (too often
    positive on normal AUL livers, docs/liver_background.md), so they do not count here either."""
    if background is None:
        return False
    get = background.get if isinstance(background, dict) else lambda k: getattr(background, k, None)
    return bool(get("cirrhosis_signs")) or get("steatosis") not in _QUIET_STEATOSIS
