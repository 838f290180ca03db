"""Writing a batch's outputs: the rows of ``summary.csv``, overlay PNGs (with Grad-CAM), and per
case ``case.json``, the HTML/PDF report and DICOM SRs.

Output writing sits at the top of ``livus.infer`` (DESIGN.md §2): it composes the drawing and
report functions of :mod:`livus.report`; nothing in ``livus.report`` imports this module.
Coordinates written are in original-image pixels.
"""

from __future__ import annotations

import csv
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from livus.infer.assessability import result_assessability
from livus.io.sources import source_stem
from livus.types import CaseResult, FrameResult

if TYPE_CHECKING:
    from livus.infer.frame import FrameAnalyzer
    from livus.infer.input_analysis import InputAnalysis


def summary_row(r: FrameResult) -> dict[str, object]:
    """One row of ``summary.csv`` for an analysed frame (sizes in mm, empty when unknown)."""
    assessability = result_assessability(r)
    mals = [les.malignancy for les in r.lesions if les.malignancy is not None]
    sizes = [les.long_axis_mm for les in r.lesions if les.long_axis_mm is not None]
    return {
        "source": r.source,
        "frame_index": r.frame_index,
        "n_lesions": len(r.lesions),
        "max_score": round(max((les.score for les in r.lesions), default=0.0), 4),
        "max_malignancy": round(max(mals), 4) if mals else "",
        "largest_long_axis_mm": round(max(sizes), 2) if sizes else "",
        "pixel_spacing_known": r.pixel_spacing_mm is not None,
        "quality": (r.quality or {}).get("verdict", ""),
        "assessability": assessability.status,
        "assessability_reasons": " | ".join(assessability.reasons),
        "warnings": " | ".join(r.warnings),
    }


def overlay_name(source: str, frame_index: int, shared_stems: frozenset[str] = frozenset()) -> str:
    """``overlay_<name>_<frame>.png``; when several inputs of the batch have the same file name
    (``a/1.jpg``, ``b/1.jpg``: possibly one case folder), a short digest of the full path keeps
    their overlays apart."""
    stem = source_stem(source)
    if stem in shared_stems:
        stem += "_" + hashlib.sha1(str(source).encode()).hexdigest()[:8]
    return f"overlay_{stem}_{frame_index:04d}.png"


def write_overlays(item: InputAnalysis, case_dir: Path, analyzer: FrameAnalyzer, language: str,
                   shared_stems: frozenset[str] = frozenset()) -> dict[tuple[str, int], Path]:
    """Overlay PNGs (with the Grad-CAM panel when enabled) of an input's frames: every still;
    for clips the frames that show a lesion, and the first frame."""
    from livus.report.overlay import draw_overlay, write_overlay_png

    out = {}
    first = item.frames[0].result.frame_index if item.frames else None
    for fa in item.frames:
        if item.is_clip and not fa.result.lesions and fa.result.frame_index != first:
            continue
        if analyzer.cfg.analyze.gradcam:
            fa.heatmap = analyzer.explain(fa)
        rgb = draw_overlay(fa.frame.pixels, fa.result, heatmap=fa.heatmap, language=language)
        fa.heatmap = None
        path = case_dir / overlay_name(fa.result.source, fa.result.frame_index, shared_stems)
        out[(fa.result.source, fa.result.frame_index)] = write_overlay_png(path, rgb)
    return out


def write_case(case: CaseResult, items: list[InputAnalysis], case_dir: Path,
               overlay_paths: dict[tuple[str, int], Path], language: str, report: bool = True) -> list[Path]:
    """case.json, the HTML/PDF report (when ``report``; ``livus.infer.report_selection``) and,
    for DICOM inputs, one DICOM SR per series and the outlines as DICOM SEG
    (``livus.report.dicom_sr.write_series_results``; overlays are already written); returns the
    report files."""
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "case.json").write_text(json.dumps(case.to_json_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    reports: dict[str, Path] = {}
    if report:
        from livus.report import render_report

        frames = [fa.result for item in items for fa in item.frames]
        mine = {k: v for k, v in overlay_paths.items() if v.parent == case_dir}
        reports = render_report(case, frames, mine, case_dir, language)
    from livus.io.readers import sniff_kind
    from livus.io.sources import as_source

    dicom = [(as_source(item.path), [fa.result for fa in item.frames]) for item in items
             if item.frames and sniff_kind(as_source(item.path)) == "dicom"]
    if dicom:  # highdicom (~1 s to import) only for a case with DICOM inputs
        from livus.report.dicom_sr import write_series_results

        write_series_results(dicom, case_dir, case.lirads)
    return list(reports.values())


def _write_case_job(job: tuple) -> list[Path]:
    return write_case(*job)


def write_cases(jobs: list[tuple], workers: int) -> list[list[Path]]:
    """``write_case`` of every case (case.json, HTML/PDF report, DICOM SRs), in order; ``jobs``:
    its arguments, ``report`` last. With several workers and more than one report to write, in a
    pool of processes (reports need no models: none are loaded)."""
    if workers <= 1 or sum(bool(job[-1]) for job in jobs) <= 1:
        return [_write_case_job(job) for job in jobs]
    from livus.report.pdf import prepare_fonts

    prepare_fonts()  # once here, not in every worker (forked workers inherit it)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_write_case_job, jobs, chunksize=max(1, len(jobs) // (8 * workers))))


def write_summary_csv(path: Path, rows: list[dict[str, object]], lirads: list[str]) -> None:
    """``summary.csv``: one ``summary_row`` per analysed frame plus its case's LI-RADS summary
    (``lirads``, one per row)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        fields = list(summary_row(FrameResult("", 0, (0, 0))).keys()) + ["lirads"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dict(row, lirads=value) for row, value in zip(rows, lirads))
