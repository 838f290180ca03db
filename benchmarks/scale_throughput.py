"""Throughput of `livus analyze` by engine (issue 17, docs/scale.md): the plain engine (one
process), ``--workers 2`` (local processes) and the Ray engine with 1 and 2 actors on a local Ray,
on the same stills with HTML + PDF reports, overlays and Grad-CAM.

Each run is ``analyze_paths`` in this process into a fresh output folder; its wall time includes
starting the worker processes / Ray actors and loading their models, the reports and the case
aggregation. Starting the local Ray itself (``ray.init``, once per job on a cluster) is timed
apart. A re-run of the 2-actor run into its own folder shows what resume costs (every input from
its shard). CPU per image is given for this process (the driver), its child processes and the
Ray actors. Prints the machine's load: on a shared machine the wall figures are lower bounds.

    .venv/bin/python benchmarks/scale_throughput.py [--n 40] [--json benchmarks/results/scale_throughput.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from livus.infer.ray_engine import InputWorker, RayEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analyze_throughput import _load, pick_inputs  # noqa: E402


class TimedWorker(InputWorker):
    """The Ray actor, also noting its CPU seconds (model loading apart) in ``<out>/actor_cpu``."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        c0 = time.process_time()
        super().__init__(*args, **kwargs)
        self.cpu = {"setup_s": time.process_time() - c0, "run_s": 0.0, "inputs": 0}

    def run(self, chunk):  # type: ignore[no-untyped-def]
        c0 = time.process_time()
        shard = super().run(chunk)
        self.cpu["run_s"] += time.process_time() - c0
        self.cpu["inputs"] += len(chunk)
        folder = self.shard_dir.parent / "actor_cpu"
        folder.mkdir(exist_ok=True)
        (folder / f"{os.getpid()}.json").write_text(json.dumps(self.cpu))
        return shard


def actor_cpu(out: Path, frames: int) -> dict[str, float]:
    """CPU of the actors of a Ray run into ``out``: analysis ms/image, model loading s/actor."""
    notes = [json.loads(p.read_text()) for p in (out / "actor_cpu").glob("*.json")]
    return {"actors_cpu_ms_per_image": round(1000 * sum(n["run_s"] for n in notes) / max(frames, 1)),
            "actor_setup_cpu_s": round(sum(n["setup_s"] for n in notes) / max(len(notes), 1), 2)}


def timed_run(inputs: list[Path], out: Path, workers: int, engine: object | None, language: str) -> dict[str, float]:
    """Wall time, images/s and CPU ms/image of this process (the driver: with Ray, shard reading,
    results, cases and reports) and of its waited-for child processes (local worker pools; Ray's
    workers are not among them)."""
    import resource

    from livus.infer.pipeline import analyze_paths

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, c0 = time.perf_counter(), time.process_time()
    with redirect_stdout(io.StringIO()):
        s = analyze_paths(inputs, out, workers=workers, language=language, progress=False, engine=engine)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    n = max(s.n_frames, 1)
    return {"frames": s.n_frames, "seconds": round(dt, 2), "images_per_s": round(s.n_frames / dt, 3),
            "driver_cpu_ms_per_image": round(1000 * cpu / n), "children_cpu_ms_per_image": round(1000 * child / n),
            "errors": len(s.errors), "load": _load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="number of still images (AUL, else the bundled examples)")
    ap.add_argument("--language", default="zh", choices=("zh", "en"))
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    import ray

    figures: dict[str, object] = {"cpus": os.cpu_count(), "start": _load()}
    print(f"{os.cpu_count()} CPUs; {_load()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        inputs = pick_inputs(args.n, tmp)
        figures["inputs"] = f"{len(inputs)} stills from {inputs[0].parent}"
        runs: dict[str, dict[str, float]] = {}
        for name, workers in (("plain (1 process)", 1), ("--workers 2", 2)):
            runs[name] = timed_run(inputs, tmp / name.replace(" ", "_"), workers, None, args.language)
            print(f"{name:22s} {runs[name]}")
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        figures["ray_init_s"] = round(time.perf_counter() - t0, 2)
        print(f"ray.init (local, 2 CPUs): {figures['ray_init_s']} s")
        try:
            for actors in (1, 2):
                name = f"ray, {actors} actor(s)"
                out = tmp / f"ray{actors}"
                runs[name] = timed_run(inputs, out, 1, RayEngine(out / "shards", actors=actors, worker_cls=TimedWorker),
                                       args.language)
                runs[name].update(actor_cpu(out, int(runs[name]["frames"])))
                print(f"{name:22s} {runs[name]}")
            engine = RayEngine(tmp / "ray2" / "shards", actors=2)
            runs["ray, 2 actors, re-run (resume)"] = timed_run(inputs, tmp / "ray2", 1, engine, args.language)
            runs["ray, 2 actors, re-run (resume)"]["reused"] = engine.stats["reused"]
            print(f"{'ray re-run (resume)':22s} {runs['ray, 2 actors, re-run (resume)']}")
        finally:
            ray.shutdown()
        figures["runs"] = runs
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
