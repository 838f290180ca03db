"""The batch analysis behind ``livus analyze``: inputs → analysed frames → cases → output files.

``analyze_paths`` reads files/folders/DICOM/clips, analyses each input (in worker processes
with ``workers > 1``), assesses each case (tracks, risk, follow-up, LI-RADS) and writes
``results.jsonl``, ``summary.csv``, ``cases/<case>/case.json``, overlays and reports. All
coordinates written are in original-image pixels. The jobs it composes, one module each:

* :mod:`livus.infer.frame` — one frame → ``FrameResult`` (``FrameAnalyzer``);
* :mod:`livus.infer.clip` — a clip's quality gate, keyframe analysis and lesion tracks;
* :mod:`livus.infer.ceus` — CEUS clips: time after injection, CEUS features per track;
* :mod:`livus.infer.input_analysis` — one input file analysed (``analyze_input``);
* :mod:`livus.infer.case_notes` — case warnings in the report's language;
* :mod:`livus.infer.outputs` — overlays, ``summary.csv``, case.json, reports, DICOM SR.

``FrameAnalyzer``, ``FrameAnalysis``, ``default_model_dir``, ``InputAnalysis`` and
``analyze_input`` are importable from here too (the service and the CLI use them).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from livus import __version__
from livus.config import LivusConfig, load_config
from livus.infer.assessability import case_assessability, result_assessability
from livus.infer.case_notes import ceus_warnings, clip_quality_warning, frame_count_warnings
from livus.infer.clip import quality_ok, track_clip
from livus.infer.frame import FrameAnalysis, FrameAnalyzer, default_model_dir
from livus.infer.input_analysis import InputAnalysis, analyze_input
from livus.infer.outputs import summary_row, write_cases, write_overlays, write_summary_csv
from livus.io.sources import source_stem
from livus.types import CaseResult, PatientBackground

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from livus.infer.case import CaseRules

__all__ = ["AnalyzeSummary", "FrameAnalysis", "FrameAnalyzer", "InputAnalysis", "analyze_input", "analyze_paths",
           "assess_input_case", "default_model_dir", "process_input"]


@dataclass
class AnalyzeSummary:
    out_dir: Path
    n_inputs: int = 0
    n_frames: int = 0
    n_lesions: int = 0
    n_low_quality: int = 0  # analysed frames whose quality verdict is not ok
    n_clip_frames: int = 0  # all frames of clips, each judged by the clip quality gate
    n_clip_frames_low_quality: int = 0
    report_mode: str = "all"  # AnalyzeConfig.reports as used
    n_cases: int = 0
    n_cases_without_report: int = 0  # left without HTML/PDF report by ``report_mode``
    errors: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    overlays: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


_WORKER: FrameAnalyzer | None = None


def _worker_init(cfg: LivusConfig, model_dir: Path | None) -> None:
    global _WORKER  # noqa: PLW0603 - one analyzer per worker process
    _WORKER = FrameAnalyzer(cfg, model_dir)


def _worker_run(path: Path, overlay_root: Path | None, language: str, shared_stems: frozenset[str] = frozenset()
                ) -> tuple[InputAnalysis, dict[tuple[str, int], Path]]:
    assert _WORKER is not None
    return process_input(path, _WORKER, overlay_root, language, shared_stems)


def process_input(path: Path | str, analyzer: FrameAnalyzer, overlay_root: Path | None, language: str,
                  shared_stems: frozenset[str] = frozenset()) -> tuple[InputAnalysis, dict[tuple[str, int], Path]]:
    """Everything ``analyze_paths`` does per input, in the process that analysed it (a worker
    with ``--workers N``): the analysis, then (``overlay_root`` given) the overlays with Grad-CAM
    in ``overlay_root/<case>`` (``shared_stems``: file names that several inputs of the batch
    have, see ``overlay_name``); the frames' pixels are released before returning (they are not
    needed later, nor sent back from a worker). Returns the analysis and its overlay files."""
    res = analyze_input(path, analyzer)
    drawn: dict[tuple[str, int], Path] = {}
    if overlay_root is not None and not res.error:
        drawn = write_overlays(res, overlay_root / res.case_key, analyzer, language, shared_stems)
    for fa in res.frames:
        fa.frame = None  # pixels are not needed any more: keep memory flat on big batches
    return res, drawn


def _iter_results(inputs: list[Path], analyzer: FrameAnalyzer, workers: int, overlay_root: Path | None,
                  language: str):
    """``process_input`` of every input, in input order, whatever the number of workers."""
    stems = Counter(source_stem(p) for p in inputs)
    shared = frozenset(s for s, n in stems.items() if n > 1)
    if workers <= 1:
        for p in inputs:
            yield process_input(p, analyzer, overlay_root, language, shared)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                             initargs=(analyzer.cfg, analyzer.model_dir)) as pool:
        yield from pool.map(partial(_worker_run, overlay_root=overlay_root, language=language, shared_stems=shared),
                            inputs)


def assess_input_case(case_key: str, items: list[InputAnalysis], patient: PatientBackground, rules: CaseRules,
                      language: str, lirads_table_path: str | None = None) -> CaseResult:
    """The case made of the analysed inputs ``items``: lesion tracks (clips tracked, stills one
    track per lesion), assessability, risk/priority/follow-up by the case ``rules`` (never advice
    when lesions were not looked for), the case warnings in ``language`` and LI-RADS."""
    from livus.infer.case import assess_case
    from livus.infer.lirads_case import case_lirads
    from livus.infer.liver_background import case_background
    from livus.infer.tracking import tracks_from_single_frames
    from livus.report.i18n import text

    tracks = []
    for item in items:
        if item.is_clip:
            tracks += item.tracks if item.tracks is not None else track_clip([fa.result for fa in item.frames], item.path)
        else:
            tracks += tracks_from_single_frames([(fa.result.source, fa.result.lesions) for fa in item.frames])
    for i, t in enumerate(tracks, start=1):
        t.track_id = i
    analysed = all(fa.result.model.get("name") != "none" for it in items for fa in it.frames)
    frame_assess = [result_assessability(fa.result) for it in items for fa in it.frames]
    assessability = case_assessability(frame_assess)
    ceus_only = bool(items) and all(it.ceus_notes for it in items)  # every input a contrast clip
    if analysed and assessability.usable and ceus_only and not tracks:
        # a CEUS clip characterises a lesion; one without a tracked lesion is no negative examination
        case = CaseResult(case_id=case_key, tracks=[], patient=patient, assessability=assessability,
                          reasons=[text("ceus_no_lesion_case", language)])
    elif analysed or not assessability.usable:
        case = assess_case(case_key, tracks, patient, rules, language=language, assessability=assessability,
                           image_background=case_background([fa.result for it in items for fa in it.frames]))
    else:  # never advise "no finding" when lesions were not looked for
        case = CaseResult(case_id=case_key, tracks=tracks, patient=patient, assessability=assessability)
        case.warnings.append(text("no_detector_case", language))
    case.warnings += frame_count_warnings(frame_assess, language)
    case.warnings += [w for it in items if (w := clip_quality_warning(it, language))]
    case.warnings += [w for it in items for w in ceus_warnings(it, language)]
    case.sources = [it.path for it in items]
    case.model = items[0].frames[0].result.model if items[0].frames else {}
    case.lirads = case_lirads(case, items, language, lirads_table_path)
    return case


def analyze_paths(
    paths: list[Path | str],
    out_dir: Path,
    config_path: str | Path | None = None,
    patient_path: str | Path | None = None,
    workers: int = 1,
    language: str = "zh",
    overlays: bool = True,
    model_dir: Path | None = None,
    progress: bool = True,
    ceus_offset_s: float | None = None,
    engine: Callable[..., Iterator[tuple[InputAnalysis, dict[tuple[str, int], Path]]]] | None = None,
    reports: str | None = None,
) -> AnalyzeSummary:
    """Batch analysis (``livus analyze``); bad inputs are listed, the rest is still processed.
    ``paths``: files, folders and/or URIs read through pyarrow (``file://``, ``s3://``, ...; see
    :mod:`livus.io.sources`), whose results keep the URI as their source.
    ``ceus_offset_s`` (when given) overrides ``AnalyzeConfig.ceus_injection_offset_s``: clips are
    CEUS clips whose time 0 is that many seconds after the injection. ``engine`` (default: this
    process and ``workers`` local processes) yields ``process_input`` of every input in input
    order, called like ``_iter_results`` (e.g. :class:`livus.infer.ray_engine.RayEngine`).
    ``reports`` (when given) overrides ``AnalyzeConfig.reports``: ``all`` | ``findings`` | ``none``
    (which cases get an HTML/PDF report, :mod:`livus.infer.report_selection`)."""
    from tqdm import tqdm

    from livus.infer.case import load_case_rules, load_patient
    from livus.infer.report_selection import check_report_mode, writes_report
    from livus.io.readers import collect_inputs
    from livus.io.sources import as_source

    t0 = time.perf_counter()
    cfg = load_config(config_path)
    if ceus_offset_s is not None:
        cfg.analyze.ceus_injection_offset_s = float(ceus_offset_s)
    if reports is not None:
        cfg.analyze.reports = check_report_mode(reports)
    patient = load_patient(patient_path) if patient_path else PatientBackground()
    rules = load_case_rules(cfg.analyze.case_rules_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = AnalyzeSummary(out_dir=out_dir, report_mode=cfg.analyze.reports)
    inputs = collect_inputs([as_source(p) for p in paths], errors=summary.errors)  # missing/unreachable: listed
    summary.n_inputs = len(inputs)

    cases: dict[str, list[InputAnalysis]] = {}
    overlay_paths: dict[tuple[str, int], Path] = {}
    results_path = out_dir / "results.jsonl"
    rows = []
    row_cases: list[str] = []  # the case of each summary row (its LI-RADS column)
    lirads_by_case: dict[str, str] = {}
    analyzer = FrameAnalyzer(cfg, model_dir)
    draw = overlays and cfg.analyze.write_overlays
    bar = tqdm(total=len(inputs), unit="file", desc="analysing", disable=not progress)
    with open(results_path, "w", encoding="utf-8") as fh:
        for res, drawn in (engine or _iter_results)(inputs, analyzer, workers, out_dir / "cases" if draw else None, language):
            bar.update(1)
            if res.error:
                summary.errors.append(res.error)
                continue
            cases.setdefault(res.case_key, []).append(res)
            overlay_paths.update(drawn)
            for fa in res.frames:
                fh.write(json.dumps(fa.result.to_json_dict(), ensure_ascii=False) + "\n")
                rows.append(summary_row(fa.result))
                row_cases.append(res.case_key)
                summary.n_frames += 1
                summary.n_lesions += len(fa.result.lesions)
                summary.n_low_quality += int(not quality_ok(fa.result))
            summary.n_clip_frames += sum(res.clip_quality.values())
            summary.n_clip_frames_low_quality += sum(n for v, n in res.clip_quality.items() if v != "ok")
    bar.close()
    summary.outputs["results"] = str(results_path)

    overlays_by_dir: dict[Path, dict[tuple[str, int], Path]] = {}
    for key, path in overlay_paths.items():
        overlays_by_dir.setdefault(path.parent, {})[key] = path
    case_jobs = []
    for case_key, items in cases.items():
        case = assess_input_case(case_key, items, patient, rules, language, cfg.analyze.lirads_table_path)
        lirads_by_case[case_key] = case.lirads.summary()
        case_dir = out_dir / "cases" / case_key
        report = writes_report(cfg.analyze.reports, case)
        summary.n_cases += 1
        summary.n_cases_without_report += not report
        case_jobs.append((case, items, case_dir, overlays_by_dir.get(case_dir, {}), language, report))
    for written in write_cases(case_jobs, workers):
        summary.reports += [str(p) for p in written]
    # after the cases: the LI-RADS column
    write_summary_csv(out_dir / "summary.csv", rows, [lirads_by_case.get(key, "") for key in row_cases])
    summary.outputs["summary"] = str(out_dir / "summary.csv")
    summary.outputs["cases"] = str(out_dir / "cases")
    summary.overlays = [str(p) for p in overlay_paths.values()]
    summary.seconds = time.perf_counter() - t0

    _print_summary(summary)
    return summary


def _print_summary(s: AnalyzeSummary) -> None:
    print(f"livus {__version__}: analysed {s.n_frames} frame(s) from {s.n_inputs} input(s), "
          f"{s.n_lesions} lesion(s), {s.n_low_quality} low-quality frame(s), in {s.seconds:.1f} s")
    if s.n_clip_frames:
        print(f"  clips: {s.n_clip_frames_low_quality} of {s.n_clip_frames} frame(s) judged low quality by the clip gate")
    for name, path in s.outputs.items():
        print(f"  {name:8s} {path}")
    if s.n_cases_without_report:
        print(f"  HTML/PDF reports for {s.n_cases - s.n_cases_without_report} of {s.n_cases} case(s) "
              f"(reports: {s.report_mode})")
    for title, paths in (("reports", s.reports), ("overlays", s.overlays)):
        if paths:
            print(f"  {title}:")
            for p in paths[:20]:
                print(f"    {p}")
            if len(paths) > 20:
                print(f"    ... and {len(paths) - 20} more")
    if s.errors:
        print(f"{len(s.errors)} input(s) could not be analysed:")
        for e in s.errors:
            print(f"  - {e}")
