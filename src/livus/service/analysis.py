"""Background analysis of stored studies, and the model the service analyses with.

Uploads, C-STORE pushes and PACS pulls only store files and queue the study; one worker thread
(the machine is small) runs the batch pipeline (:func:`livus.infer.pipeline.analyze_paths`:
results, overlays, case, report) into ``<data_dir>/studies/<uid>/analysis`` and records every
frame's result with the model version that produced it. Studies still queued when the server
stopped are queued again at start, so nothing is lost.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from livus.config import LivusConfig, load_config
from livus.monitor.drift import frame_stats
from livus.monitor.registry import ModelRegistry
from livus.service.storage import FrameRecord, Report, Study, StudyFile, User

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


def _public_message(msg: str, by_path: dict[str, StudyFile]) -> str:
    """An error message with server paths replaced by the names the user uploaded."""
    for p, f in by_path.items():
        msg = msg.replace(p, f.original_name)
    return msg


class AnalysisWorker:
    """One thread that analyses queued studies in order."""

    def __init__(self, sm: sessionmaker, data_dir: Path, models: ModelProvider, language: str = "zh",
                 on_done: Callable[[int], None] | None = None) -> None:
        self.sm = sm
        self.data_dir = Path(data_dir)
        self.models = models
        self.language = language
        self.on_done = on_done
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()
        self.idle.set()

    def start(self) -> None:
        with self.sm() as db:
            pending = db.scalars(select(Study.id).where(Study.status.in_(("queued", "running"))).order_by(Study.id)).all()
        self._thread = threading.Thread(target=self._run, name="livus-analysis", daemon=True)
        self._thread.start()
        for sid in pending:
            self.submit(sid)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def submit(self, study_id: int) -> None:
        self.idle.clear()
        self._queue.put(study_id)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Block until the queue is empty and nothing runs (tests, shutdown)."""
        return self.idle.wait(timeout_s)

    def _run(self) -> None:
        while True:
            sid = self._queue.get()
            if sid is None:
                return
            try:
                self.run_study(sid)
            except Exception:  # noqa: BLE001 - the worker must survive any single study
                log.exception("analysis of study %s failed", sid)
            finally:
                if self._queue.empty():
                    self.idle.set()

    # ------------------------------------------------------------------ one study
    def run_study(self, study_id: int) -> None:
        """Analyse all files of a study and store frames, overlays, case and report."""
        with self.sm() as db:
            study = db.get(Study, study_id)
            if study is None:
                return
            study.status = "running"
            db.commit()
            files = list(study.files)
            uid = study.uid
            uploader = db.get(User, study.created_by) if study.created_by else None
            language = uploader.language if uploader else self.language
        out_dir = self.data_dir / "studies" / uid / "analysis"
        model_dir, version = self.models.current()
        by_path = {str((self.data_dir / f.stored_path).resolve()): f for f in files}
        paths = [Path(p) for p in by_path]
        results, errors, case_jsons, reports = self._analyse(paths, out_dir, model_dir, language)
        stats = self._file_stats(by_path)
        with self.sm() as db:
            study = db.get(Study, study_id)
            if study is None:  # deleted meanwhile
                return
            for rec in results:
                f = by_path.get(str(Path(rec["source"]).resolve())) if rec.get("source") else None
                if f is not None:
                    rec["source"] = f.original_name  # never show server paths
                name, ver = model_label(rec, version)
                overlay = self._overlay_for(out_dir, f, rec)
                db.add(FrameRecord(
                    study_id=study_id, file_id=f.id if f else None, frame_index=int(rec.get("frame_index", 0)),
                    width_px=int(rec["image_size_px"][0]), height_px=int(rec["image_size_px"][1]), result=rec,
                    n_lesions=len(rec.get("lesions", [])), model_name=name, model_version=ver,
                    overlay_path=overlay, stats=stats.get(f.id) if f else None,
                ))
            public_errors = [_public_message(e, by_path) for e in errors]
            for err, public in zip(errors, public_errors):
                for p, f in by_path.items():
                    if err.startswith(p):
                        db.get(StudyFile, f.id).error = public
            for kind, path in reports:
                db.add(Report(study_id=study_id, kind=kind, path=str(path.relative_to(self.data_dir))))
            study.case_json = {"cases": case_jsons} if case_jsons else None
            study.status = "done" if results else "failed"
            study.error = "\n".join(public_errors)[:5000] or ("" if results else "no frame could be analysed")
            db.commit()
        if self.on_done is not None:
            self.on_done(study_id)

    def _analyse(self, paths: list[Path], out_dir: Path, model_dir: Path | None, language: str):
        """Run the batch pipeline; when its report/overlay parts fail, fall back to results only."""
        from livus.infer.pipeline import analyze_input, analyze_paths

        results: list[dict[str, Any]] = []
        errors: list[str] = []
        case_jsons: list[dict[str, Any]] = []
        reports: list[tuple[str, Path]] = []
        try:
            summary = analyze_paths(paths, out_dir, config_path=self.models.analysis_config, language=language,
                                    model_dir=model_dir, progress=False)
            errors = list(summary.errors)
            with open(out_dir / "results.jsonl", encoding="utf-8") as fh:
                results = [json.loads(line) for line in fh if line.strip()]
            for case_file in sorted((out_dir / "cases").glob("*/case.json")):
                case_jsons.append(json.loads(case_file.read_text(encoding="utf-8")))
                for kind in ("html", "pdf"):
                    reports += [(kind, rp) for rp in sorted(case_file.parent.glob(f"report*.{kind}"))[:1]]
            return results, errors, case_jsons, reports
        except Exception as exc:  # noqa: BLE001 - pipeline parts may be missing; results still count
            log.warning("batch pipeline failed (%s: %s); analysing frames only", type(exc).__name__, exc)
            note = f"overlays/report unavailable: {type(exc).__name__}: {exc}"
        analyzer = self.models.analyzer()[0]
        results, errors = [], []
        for p in paths:
            res = analyze_input(p, analyzer)
            if res.error:
                errors.append(res.error)
            for fa in res.frames:
                d = fa.result.to_json_dict()
                d["warnings"].append(note)
                results.append(d)
        return results, errors, [], []

    def _overlay_for(self, out_dir: Path, f: StudyFile | None, rec: dict[str, Any]) -> str:
        if f is None:
            return ""
        name = f"overlay_{Path(f.stored_path).stem}_{int(rec.get('frame_index', 0)):04d}.png"
        for p in (out_dir / "cases").glob(f"*/{name}"):
            return str(p.relative_to(self.data_dir))
        return ""

    def _file_stats(self, by_path: dict[str, StudyFile]) -> dict[int, dict[str, Any]]:
        """Drift statistics of each file's first frame."""
        from livus.io.readers import read_frame

        out = {}
        for p, f in by_path.items():
            try:
                fr = read_frame(Path(p))
            except Exception:  # noqa: BLE001 - unreadable files are reported by the pipeline
                continue
            out[f.id] = frame_stats(fr.pixels, fr.metadata)
        return out
