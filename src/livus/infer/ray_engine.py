"""``livus analyze --engine ray``: the per-input analysis of ``analyze_paths`` on a Ray cluster.

Each Ray actor (:class:`InputWorker`) loads the models once (a ``FrameAnalyzer``) and analyses
chunks of inputs with :func:`livus.infer.pipeline.process_input` — the same function the local
``--workers`` processes run — writing overlays into the output folder and each finished chunk as
one shard file ``<out>/shards/<digest>.pkl`` (written to a temporary name, then renamed: a shard
is whole or absent). The driver reads the shards and hands the analyses to ``analyze_paths`` in
input order, which writes ``results.jsonl`` and does the case aggregation and reports as with
the local engine.

Failures and resume: an actor whose process dies is restarted and its running chunk is retried
(Ray ``max_restarts`` / ``max_task_retries``); a chunk that still fails becomes an error line
per input (listed in the summary, never in ``results.jsonl``). A re-run into the same output
folder reads the shards already there and analyses only the inputs without one, so nothing is
analysed twice and nothing is lost; a shard made with another model, configuration, language or
output folder is not reused (see :func:`run_fingerprint`).

Inputs are local paths readable under the same path on every node (a shared filesystem) or
URIs that every node reads through pyarrow (``s3://``, ``gs://``, ``hdfs://``, ``file://``, ...;
:mod:`livus.io.sources`); the output folder must be writable under the same path on every node.
Ray is an optional extra (``pip install 'livus[cluster]'``), imported only here, only when this
engine runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
from collections import Counter, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livus import __version__
from livus.io.sources import as_source, source_stem

if TYPE_CHECKING:
    from collections.abc import Iterator

    from livus.config import LivusConfig
    from livus.infer.frame import FrameAnalyzer
    from livus.infer.input_analysis import InputAnalysis

RAY_MISSING = "the Ray engine needs Ray: pip install 'livus[cluster]' (or: pip install ray)"
SHARD_SUFFIX = ".pkl"

# one analysed input: (input path, its stem shared with another input, analysis, overlay files)
Entry = tuple[str, bool, "InputAnalysis", dict[tuple[str, int], Path]]


def import_ray() -> Any:
    """The ``ray`` module, or a RuntimeError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(RAY_MISSING) from exc
    return ray


def run_fingerprint(cfg: LivusConfig, model_info: dict[str, str], language: str, overlay_root: Path | None) -> str:
    """Digest of everything that changes an input's analysis or its files: livus version,
    model name/version, the whole configuration, report language, overlay folder. A shard is
    reused only under the same fingerprint."""
    key = {"livus": __version__, "model": model_info, "cfg": dataclasses.asdict(cfg), "language": language,
           "overlays": str(overlay_root) if overlay_root is not None else None}
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def write_shard(path: Path, fingerprint: str, entries: list[Entry]) -> Path:
    """One shard file, atomically (temporary name in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({"fingerprint": fingerprint, "entries": entries}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


def read_shards(shard_dir: Path, fingerprint: str) -> dict[tuple[str, bool], Entry]:
    """Entries of every shard in ``shard_dir`` made under ``fingerprint``, by (path, shared);
    unreadable shards, other fingerprints and inputs that failed are skipped (analysed again)."""
    done: dict[tuple[str, bool], Entry] = {}
    for shard in sorted(shard_dir.glob("*" + SHARD_SUFFIX)) if shard_dir.is_dir() else []:
        try:
            with open(shard, "rb") as fh:
                data = pickle.load(fh)
        except Exception:  # noqa: BLE001 - a damaged shard is redone, never fatal
            continue
        if data.get("fingerprint") == fingerprint:
            for entry in data["entries"]:
                if entry[2].error is None:  # an input that failed is tried again
                    done[(entry[0], entry[1])] = entry
    return done


class InputWorker:
    """What one Ray actor does: the models loaded once, then chunks of inputs analysed with
    ``process_input`` (overlays written under ``overlay_root``), each chunk saved as one shard
    in ``shard_dir``. Relative paths are taken from ``cwd`` (the driver's working directory,
    when this node has it), so sources read as in the local engine. Plain class:
    :class:`RayEngine` makes it a Ray actor."""

    def __init__(self, cfg: LivusConfig, model_dir: Path, overlay_root: Path | None, language: str,
                 shard_dir: Path, fingerprint: str, cwd: str | None = None) -> None:
        from livus.infer.frame import FrameAnalyzer

        if cwd and Path(cwd).is_dir():
            os.chdir(cwd)  # this actor's own process
        self.analyzer = FrameAnalyzer(cfg, model_dir)
        self.overlay_root, self.language = overlay_root, language
        self.shard_dir, self.fingerprint = Path(shard_dir), fingerprint

    def run(self, chunk: list[tuple[str, bool]]) -> str:
        """Analyse ``chunk`` ((path, stem shared) pairs); returns the shard file written."""
        from livus.infer.pipeline import process_input

        entries: list[Entry] = []
        for path, shared in chunk:
            stems = frozenset({source_stem(path)}) if shared else frozenset()
            res, drawn = process_input(as_source(path), self.analyzer, self.overlay_root, self.language, stems)
            entries.append((path, shared, res, drawn))
        digest = hashlib.sha1(json.dumps([self.fingerprint, chunk]).encode()).hexdigest()[:20]
        return str(write_shard(self.shard_dir / (digest + SHARD_SUFFIX), self.fingerprint, entries))


@dataclasses.dataclass
class RayEngine:
    """Engine for ``analyze_paths(engine=...)``: ``process_input`` of every input on Ray actors,
    yielded in input order (as soon as the inputs before it are done).

    ``address``: a running cluster (``ray://host:10001``, ``host:6379`` or ``"auto"``); None
    starts a new local Ray with ``actors`` CPUs (never a running one) unless Ray is already
    initialised in this process.
    ``actors``: number of actors (None, or more than the cluster's CPUs: one per CPU). ``chunk_inputs``: inputs per
    task and shard (None: about four chunks per actor, at most 32 inputs). ``worker_cls``: the
    actor's class (tests pass a subclass of :class:`InputWorker`)."""

    shard_dir: Path
    address: str | None = None
    actors: int | None = None
    chunk_inputs: int | None = None
    max_restarts: int = 3  # restarts of an actor whose process died
    max_task_retries: int = 3  # re-runs of the chunk it was running
    worker_cls: type = InputWorker
    stats: dict[str, int] = dataclasses.field(default_factory=dict)  # reused / analysed / failed inputs

    def __call__(self, inputs: list[Path | str], analyzer: FrameAnalyzer, workers: int, overlay_root: Path | None,
                 language: str) -> Iterator[tuple[InputAnalysis, dict[tuple[str, int], Path]]]:
        ray = import_ray()
        stems = Counter(source_stem(p) for p in inputs)
        keys = [(str(p), stems[source_stem(p)] > 1) for p in inputs]
        fingerprint = run_fingerprint(analyzer.cfg, analyzer.model_info, language, overlay_root)
        done = read_shards(Path(self.shard_dir), fingerprint)
        todo = list(dict.fromkeys(k for k in keys if k not in done))
        self.stats = {"reused": len(keys) - len(todo), "analysed": 0, "failed": 0}
        started = False
        if todo and not ray.is_initialized():
            if self.address:  # a running cluster (its own settings), or a Ray client (ray://)
                ray.init(address=self.address)
            else:
                ray.init(address="local", num_cpus=self.actors or os.cpu_count() or 1, include_dashboard=False,
                         log_to_driver=False)
            started = True
        try:
            results = self._run(ray, todo, analyzer, overlay_root, language, fingerprint) if todo else iter(())
            yield from _in_order(keys, done, results)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, todo: list[tuple[str, bool]], analyzer: FrameAnalyzer, overlay_root: Path | None,
             language: str, fingerprint: str) -> Iterator[Entry]:
        """Entries of ``todo`` as their chunks finish (any order); a chunk that fails for good
        gives error entries."""
        from livus.infer.input_analysis import InputAnalysis

        cpus = int(ray.cluster_resources().get("CPU", 1))  # more actors than CPUs would wait for ever
        n_actors = max(1, min(len(todo), self.actors or cpus, cpus))
        size = self.chunk_inputs or max(1, min(32, math.ceil(len(todo) / (4 * n_actors))))
        queue = deque(todo[i:i + size] for i in range(0, len(todo), size))
        actor_cls = ray.remote(num_cpus=1, max_restarts=self.max_restarts,
                               max_task_retries=self.max_task_retries)(self.worker_cls)
        idle = [actor_cls.remote(analyzer.cfg, analyzer.model_dir, overlay_root, language, self.shard_dir, fingerprint,
                                 os.getcwd()) for _ in range(n_actors)]
        pending: dict[Any, tuple[Any, list[tuple[str, bool]]]] = {}
        while queue or pending:
            while idle and queue:
                actor = idle.pop()
                chunk = queue.popleft()
                pending[actor.run.remote(chunk)] = (actor, chunk)
            if not pending:  # every actor is gone for good: the rest cannot be analysed now
                failed = [k for chunk in queue for k in chunk]
                queue.clear()
                reason = "no Ray worker left"
            else:
                ready, _ = ray.wait(list(pending), num_returns=1)
                actor, chunk = pending.pop(ready[0])
                try:
                    entries = read_shards_file(Path(ray.get(ready[0])))
                except ray.exceptions.RayError as exc:
                    if not isinstance(exc, ray.exceptions.RayActorError):
                        idle.append(actor)
                    failed, reason = chunk, f"{type(exc).__name__} on the Ray cluster after retries"
                else:
                    idle.append(actor)
                    self.stats["analysed"] += len(entries)
                    yield from entries
                    continue
            self.stats["failed"] += len(failed)
            for path, shared in failed:  # not in a shard: a re-run analyses them again
                yield (path, shared, InputAnalysis(path=path, error=f"{path}: {reason} (re-run to resume)"), {})


def read_shards_file(path: Path) -> list[Entry]:
    """The entries of one shard file."""
    with open(path, "rb") as fh:
        return pickle.load(fh)["entries"]


def _in_order(keys: list[tuple[str, bool]], done: dict[tuple[str, bool], Entry], results: Iterator[Entry]
              ) -> Iterator[tuple[InputAnalysis, dict[tuple[str, int], Path]]]:
    """(analysis, overlays) for every key in order: from ``done`` or, waiting as needed, from
    ``results`` (which arrive in any order)."""
    got = dict(done)
    for key in keys:
        while key not in got:
            entry = next(results)
            got[(entry[0], entry[1])] = entry
        yield got[key][2], got[key][3]
