"""livus.report — result outputs: overlays, HTML/PDF case report (zh/en), DICOM SR,
de-identified export.

``render_report`` is the one call the pipeline needs for a case report; the other modules are
imported where used (``livus.report.overlay``, ``livus.report.dicom_sr``,
``livus.report.deidentify``).
"""

from __future__ import annotations

import re
from pathlib import Path

from livus.report.content import OverlayKey, build_report_content
from livus.types import CaseResult, FrameResult


def _safe_name(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("._") or "case"


def render_report(
    case: CaseResult,
    frames: list[FrameResult],
    overlay_paths: dict[OverlayKey, Path] | None,
    out_dir: Path,
    language: str,
) -> dict[str, Path]:
    """Write the case report as HTML and PDF in ``language`` (``zh`` or ``en``).

    ``overlay_paths`` maps ``(source, frame_index)`` (or ``"source#frame_index"``, or a source)
    to an overlay PNG made by :func:`livus.report.overlay.draw_overlay`. Files are
    ``out_dir/report_<case_id>_<language>.html`` and ``.pdf``; returns ``{"html": ..., "pdf": ...}``.
    """
    from livus.report.html import write_html
    from livus.report.pdf import write_pdf

    content = build_report_content(case, frames, overlay_paths, language)
    stem = Path(out_dir) / f"report_{_safe_name(case.case_id)}_{language}"
    return {
        "html": write_html(content, stem.with_suffix(".html")),
        "pdf": write_pdf(content, stem.with_suffix(".pdf")),
    }


__all__ = ["render_report"]
