"""Background analysis of stored studies, and the model the service analyses with.

Uploads, C-STORE pushes and PACS pulls only store files and mark the study ``queued``: the
database is the queue. :class:`AnalysisWorker` claims queued studies (an atomic
``queued → running`` update, so two servers on one database never take the same study) and
analyses up to ``workers`` of them at once, each in its own worker process (a pool; one per CPU
core by default), with the batch pipeline (:func:`livus.infer.pipeline.analyze_paths`: results,
overlays, case, report) into ``<data_dir>/studies/<uid>/analysis``. The server process records
every frame's result with the model version that produced it, in one transaction per study.

Nothing is lost on a crash: a study left ``running`` (server killed mid-analysis) is queued
again at the next start and analysed from the start; after ``max_attempts`` cut-off runs it is
marked failed instead of looping.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from livus.config import LivusConfig, load_config
from livus.monitor.registry import ModelRegistry
from livus.service.storage import FrameRecord, Report, Study, StudyFile, User, make_private

log = logging.getLogger("livus.service")

DETECTOR_MODEL = "detector"


class ModelProvider:
    """The folder of the model to use: the registry's active ``detector`` version, else the
    bundled ``models/`` folder (:func:`livus.infer.pipeline.default_model_dir`).

    Keeps one loaded :class:`FrameAnalyzer` for live frames and reloads it when the active
    version changes (activation or rollback).
    """

    def __init__(self, registry: ModelRegistry, analysis_config: str | None = None) -> None:
        self.registry = registry
        self.analysis_config = analysis_config
        self._lock = threading.Lock()
        self._analyzer: Any = None
        self._key: object = object()

    def current(self) -> tuple[Path | None, str | None]:
        """``(model_dir, registry_version)``; ``(None, None)`` = bundled default model."""
        mv = self.registry.active(DETECTOR_MODEL)
        return (mv.path, mv.version) if mv else (None, None)

    def analysis_cfg(self) -> LivusConfig:
        return load_config(self.analysis_config)

    def analyzer(self) -> tuple[Any, str | None]:
        """A loaded ``FrameAnalyzer`` for the active version, and that version."""
        from livus.infer.pipeline import FrameAnalyzer

        model_dir, version = self.current()
        with self._lock:
            if self._analyzer is None or self._key != (model_dir, version):
                self._analyzer = FrameAnalyzer(self.analysis_cfg(), model_dir)
                self._key = (model_dir, version)
            return self._analyzer, version


def model_label(result: dict[str, Any], registry_version: str | None) -> tuple[str, str]:
    """``(name, version)`` recorded with a result: the registry's version when it manages the
    model, else what the analyzer reported."""
    model = result.get("model") or {}
    if registry_version:
        model = {"name": DETECTOR_MODEL, "version": registry_version, "weights": model.get("version", "")}
        result["model"] = model
    return str(model.get("name", "none")), str(model.get("version", "0"))


# ----------------------------------------------------------------------------- one study's job


@dataclass
class AnalysisJob:
    """What a worker process needs to analyse one study (plain data: it is pickled)."""

    paths: list[str]  # absolute paths of the study's files
    out_dir: str
    model_dir: str | None
    config_path: str | None
    language: str
    patient: dict[str, str] = field(default_factory=dict)  # patient_id / patient_name for the reports


@dataclass
class AnalysisOutput:
    results: list[dict[str, Any]]
    errors: list[str]
    case_jsons: list[dict[str, Any]]
    reports: list[tuple[str, str]]  # (kind, absolute path)
    stats: dict[str, dict[str, Any]]  # path → drift statistics of its first frame


def analyse_files(job: AnalysisJob) -> AnalysisOutput:
    """Run the batch pipeline on one study's files (in a worker process, or in the server's
    thread); when its report/overlay parts fail, fall back to per-frame results only."""
    from livus.infer.pipeline import FrameAnalyzer, analyze_input, analyze_paths

    out_dir = Path(job.out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)  # a run cut off earlier starts again from nothing
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in job.paths]
    model_dir = Path(job.model_dir) if job.model_dir else None
    stats = _file_stats(paths)
    patient_path = None
    if any(job.patient.values()):
        patient_path = out_dir / "patient.json"
        patient_path.write_text(json.dumps({k: v for k, v in job.patient.items() if v}, ensure_ascii=False),
                                encoding="utf-8")
    try:
        summary = analyze_paths(paths, out_dir, config_path=job.config_path, patient_path=patient_path,
                                language=job.language, model_dir=model_dir, progress=False,
                                reports="all")  # the service always offers the reports
        with open(out_dir / "results.jsonl", encoding="utf-8") as fh:
            results = [json.loads(line) for line in fh if line.strip()]
        case_jsons, reports = [], []
        for case_file in sorted((out_dir / "cases").glob("*/case.json")):
            case_jsons.append(json.loads(case_file.read_text(encoding="utf-8")))
            for kind, pattern in (("html", "report*.html"), ("pdf", "report*.pdf"), ("sr", "sr_*.dcm")):
                reports += [(kind, str(rp)) for rp in sorted(case_file.parent.glob(pattern))[:1]]
        return AnalysisOutput(results, list(summary.errors), case_jsons, reports, stats)
    except Exception as exc:  # noqa: BLE001 - pipeline parts may be missing; results still count
        log.warning("batch pipeline failed (%s: %s); analysing frames only", type(exc).__name__, exc)
        note = f"overlays/report unavailable: {type(exc).__name__}: {exc}"
    analyzer = FrameAnalyzer(load_config(job.config_path), model_dir)
    results, errors = [], []
    for p in paths:
        res = analyze_input(p, analyzer)
        if res.error:
            errors.append(res.error)
        for fa in res.frames:
            d = fa.result.to_json_dict()
            d["warnings"].append(note)
            results.append(d)
    return AnalysisOutput(results, errors, [], [], stats)


def _file_stats(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Drift statistics of each file's first frame."""
    from livus.io.readers import read_frame
    from livus.monitor.drift import frame_stats

    out = {}
    for p in paths:
        try:
            fr = read_frame(p)
        except Exception:  # noqa: BLE001 - unreadable files are reported by the pipeline
            continue
        out[str(p)] = frame_stats(fr.pixels, fr.metadata)
    return out


def _init_process() -> None:
    """Worker processes: one thread each for the numeric libraries (the pool already uses
    every core); runs before the pipeline imports torch."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass


def public_text(text: str, names: dict[str, str], data_dir: Path) -> str:
    """``text`` with server paths replaced by the names the user uploaded (``names``: absolute
    path → display name), and any other path under the data directory shortened to its last part."""
    for p, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(p, name)
    root = str(data_dir)
    while root in text:
        start = text.index(root)
        end = start + len(root)
        while end < len(text) and text[end] not in " \"',;:\n)]}":
            end += 1
        text = text[:start] + Path(text[start:end]).name + text[end:]
    return text


def public_json(obj: Any, names: dict[str, str], data_dir: Path) -> Any:
    """``obj`` (JSON data) without server paths (see :func:`public_text`)."""
    escaped = {json.dumps(p, ensure_ascii=False)[1:-1]: json.dumps(n, ensure_ascii=False)[1:-1] for p, n in names.items()}
    root = json.dumps(str(data_dir), ensure_ascii=False)[1:-1]
    return json.loads(public_text(json.dumps(obj, ensure_ascii=False), escaped, Path(root)))


# ----------------------------------------------------------------------------- the worker


class AnalysisWorker:
    """Analyses queued studies, ``workers`` at a time (see the module docstring).

    ``in_process``: run the pipeline in the server's own threads instead of worker processes
    (tests; a machine where processes cannot be started)."""

    def __init__(self, sm: sessionmaker, data_dir: Path, models: ModelProvider, language: str = "zh",
                 on_done: Callable[[int], None] | None = None, workers: int = 0, in_process: bool = False,
                 max_attempts: int = 3, poll_s: float = 2.0) -> None:
        self.sm = sm
        self.data_dir = Path(data_dir)
        self.models = models
        self.language = language
        self.on_done = on_done
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.in_process = in_process
        self.max_attempts = max(1, max_attempts)
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, Future] = {}
        self._thread: threading.Thread | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._pool: ProcessPoolExecutor | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Queue again the studies a previous run left half-done, then start dispatching."""
        with self.sm() as db:
            n = db.execute(update(Study).where(Study.status == "running").values(status="queued")).rowcount
            db.commit()
        if n:
            log.info("%d study/studies cut off by the last stop queued again", n)
        self._stop.clear()
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="livus-analysis")
        self._thread = threading.Thread(target=self._dispatch, name="livus-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop claiming; wait up to ``timeout_s`` for running studies (those still running are
        resumed at the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def submit(self, study_id: int) -> None:  # noqa: ARG002 - the study is already queued in the database
        """Wake the dispatcher (the study is in the database queue already)."""
        self._wake.set()

    def pending(self) -> int:
        """Studies queued or running (in the database)."""
        with self.sm() as db:
            return int(db.scalar(select(func.count()).select_from(Study).where(Study.status.in_(("queued", "running")))) or 0)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Block until nothing is queued or running (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._running)
            if not busy and self.pending() == 0:
                return True
            self._wake.set()
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ dispatching
    def _claim(self) -> int | None:
        """Take the oldest queued study (atomically ``queued → running``); ``None`` when none."""
        with self.sm() as db:
            for sid in db.scalars(select(Study.id).where(Study.status == "queued").order_by(Study.id).limit(5)):
                took = db.execute(update(Study).where(Study.id == sid, Study.status == "queued")
                                  .values(status="running", attempts=Study.attempts + 1)).rowcount
                db.commit()
                if took == 1:
                    return sid
        return None

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._lock:
                for sid in [s for s, fut in self._running.items() if fut.done()]:
                    del self._running[sid]
                free = self.workers - len(self._running)
            for _ in range(free):
                try:
                    sid = self._claim()
                except Exception:  # noqa: BLE001 - database busy/unreachable: try again later
                    log.exception("cannot read the analysis queue")
                    break
                if sid is None:
                    break
                assert self._threads is not None
                fut = self._threads.submit(self._run_claimed, sid)
                with self._lock:
                    self._running[sid] = fut
            self._wake.wait(self.poll_s)

    def _run_claimed(self, study_id: int) -> None:
        try:
            self.run_study(study_id)
        except Exception:  # noqa: BLE001 - the worker must survive any single study
            log.exception("analysis of study %s failed", study_id)
            with self.sm() as db:
                study = db.get(Study, study_id)
                if study is not None and study.status == "running":
                    study.status, study.error = "failed", "analysis failed (internal error; see the server log)"
                    db.commit()
        finally:
            self._wake.set()

    def _execute(self, job: AnalysisJob) -> AnalysisOutput:
        if self.in_process:
            return analyse_files(job)
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_init_process)
            pool = self._pool
        try:
            return pool.submit(analyse_files, job).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    # ------------------------------------------------------------------ one study
    def run_study(self, study_id: int) -> None:
        """Analyse all files of a claimed (``running``) study and store frames, overlays,
        case and report."""
        with self.sm() as db:
            study = db.get(Study, study_id)
            if study is None:
                return
            if study.attempts > self.max_attempts:
                study.status = "failed"
                study.error = f"analysis was cut off {study.attempts - 1} times (crash or restart); not tried again"
                db.commit()
                return
            files = list(study.files)
            uid = study.uid
            uploader = db.get(User, study.created_by) if study.created_by else None
            language = uploader.language if uploader else self.language
            patient = {"patient_id": study.patient_id, "patient_name": study.patient_name}
        study_dir = self.data_dir / "studies" / uid
        out_dir = study_dir / "analysis"
        model_dir, version = self.models.current()
        by_path = {str((self.data_dir / f.stored_path).resolve()): f for f in files}
        job = AnalysisJob(list(by_path), str(out_dir), str(model_dir) if model_dir else None,
                          self.models.analysis_config, language, patient)
        try:
            out = self._execute(job)
        except BrokenProcessPool:
            log.error("the worker process analysing study %s died; it is queued again", uid)
            with self.sm() as db:
                db.execute(update(Study).where(Study.id == study_id, Study.status == "running").values(status="queued"))
                db.commit()
            return
        make_private(study_dir)
        names = {p: f.original_name for p, f in by_path.items()}
        with self.sm() as db:
            study = db.get(Study, study_id)
            if study is None:  # deleted meanwhile
                return
            for old in (*study.frames, *study.reports):  # a run recorded before (idempotent re-run)
                db.delete(old)
            db.flush()
            for rec in out.results:
                src = str(Path(rec["source"]).resolve()) if rec.get("source") else ""
                f = by_path.get(src)
                rec = public_json(rec, names, self.data_dir)  # never show server paths
                name, ver = model_label(rec, version)
                db.add(FrameRecord(
                    study_id=study_id, file_id=f.id if f else None, frame_index=int(rec.get("frame_index", 0)),
                    width_px=int(rec["image_size_px"][0]), height_px=int(rec["image_size_px"][1]), result=rec,
                    n_lesions=len(rec.get("lesions", [])), model_name=name, model_version=ver,
                    overlay_path=self._overlay_for(out_dir, f, rec), stats=out.stats.get(src),
                ))
            public_errors = [public_text(e, names, self.data_dir) for e in out.errors]
            for err, public in zip(out.errors, public_errors):
                for p, f in by_path.items():
                    if err.startswith(p):
                        db.get(StudyFile, f.id).error = public
            for kind, path in out.reports:
                db.add(Report(study_id=study_id, kind=kind, path=str(Path(path).relative_to(self.data_dir))))
            study.case_json = public_json({"cases": out.case_jsons}, names, self.data_dir) if out.case_jsons else None
            study.status = "done" if out.results else "failed"
            study.error = "\n".join(public_errors)[:5000] or ("" if out.results else "no frame could be analysed")
            db.commit()
        if self.on_done is not None:
            self.on_done(study_id)

    def _overlay_for(self, out_dir: Path, f: StudyFile | None, rec: dict[str, Any]) -> str:
        """The overlay the pipeline drew for this frame (file stems are unique in a study)."""
        if f is None:
            return ""
        name = f"overlay_{Path(f.stored_path).stem}_{int(rec.get('frame_index', 0)):04d}.png"
        for p in (out_dir / "cases").glob(f"*/{name}"):
            return str(p.relative_to(self.data_dir))
        return ""
