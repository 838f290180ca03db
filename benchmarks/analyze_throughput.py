"""End-to-end batch throughput of `livus analyze` on still 1024×768 JPEGs (issue 7 target ≥ 20/s).

Times, per image: reading, FrameAnalyzer.analyze (preprocessing + models + mapping back) and
JSON serialisation; overlays are timed separately. Uses AUL 1024×768 images when the folder is
there, else simulated ones. Prints images/s and per-stage medians.

    .venv/bin/python benchmarks/analyze_throughput.py [--n 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from livus.config import LivusConfig
from livus.infer.pipeline import FrameAnalyzer
from livus.io.readers import read_frames
from livus.report.overlay import draw_overlay

AUL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "aul"


def _jpeg_inputs(n: int, tmp: Path) -> list[Path]:
    found = []
    for p in sorted(AUL.glob("*/image/*.jpg")):
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is not None and img.shape == (768, 1024):
            found.append(p)
        if len(found) == n:
            return found
    from livus.simulate.dataset import simulate_dataset

    sim = simulate_dataset(tmp / "sim", n=n - len(found), clips=False, ceus=False, dicom=False, profile=None, seed=1)
    for i, p in enumerate(sorted((Path(sim) / "images").glob("*.png"))):
        img = cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (1024, 768))
        out = tmp / f"sim_{i}.jpg"
        cv2.imwrite(str(out), img)
        found.append(out)
    return found[:n]


_AN: FrameAnalyzer | None = None


def _init(threads: int) -> None:
    global _AN  # noqa: PLW0603 - one analyzer per worker process
    cfg = LivusConfig()
    cfg.analyze.threads = threads
    _AN = FrameAnalyzer(cfg)


def _one(path: Path) -> str:
    assert _AN is not None
    return json.dumps(_AN.analyze(next(read_frames(path))).result.to_json_dict())


def parallel_rate(inputs: list[Path], workers: int) -> float:
    """Images/s of read + analyse + JSON with ``workers`` processes (1 thread each)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, initializer=_init, initargs=(1,)) as pool:
        list(pool.map(_one, inputs[:workers]))  # warm-up: models loaded in every worker
        t0 = time.perf_counter()
        lines = list(pool.map(_one, inputs))
        dt = time.perf_counter() - t0
    assert len(lines) == len(inputs)
    return len(inputs) / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="processes for the parallel figure (livus analyze --workers)")
    args = ap.parse_args()
    cfg = LivusConfig()
    cfg.analyze.threads = args.threads
    with tempfile.TemporaryDirectory() as d:
        inputs = _jpeg_inputs(args.n, Path(d))
        analyzer = FrameAnalyzer(cfg)
        print(f"model: {analyzer.model_info}, {len(inputs)} images, threads={args.threads}")
        analyzer.analyze(next(read_frames(inputs[0])))  # warm-up
        t_read, t_an, t_json, t_ov = [], [], [], []
        t_all = time.perf_counter()
        for p in inputs:
            t0 = time.perf_counter()
            frame = next(read_frames(p))
            t1 = time.perf_counter()
            fa = analyzer.analyze(frame)
            t2 = time.perf_counter()
            json.dumps(fa.result.to_json_dict())
            t3 = time.perf_counter()
            t_read.append(t1 - t0)
            t_an.append(t2 - t1)
            t_json.append(t3 - t2)
        total = time.perf_counter() - t_all
        for p in inputs[:10]:
            frame = next(read_frames(p))
            fa = analyzer.analyze(frame)
            t0 = time.perf_counter()
            draw_overlay(frame.pixels, fa.result, heatmap=np.zeros(frame.pixels.shape, np.float32))
            t_ov.append(time.perf_counter() - t0)
        rate_parallel = parallel_rate(inputs, args.workers)
    ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    print(f"end-to-end (read + analyse + JSON): {len(inputs) / total:.1f} images/s "
          f"(target >= 20); median ms: read {ms(t_read):.1f}, analyse {ms(t_an):.1f}, json {ms(t_json):.2f}")
    print(f"with {args.workers} worker processes (1 thread each): {rate_parallel:.1f} images/s (target >= 20)")
    print(f"overlay drawing (separate): median {ms(t_ov):.1f} ms/image")


if __name__ == "__main__":
    main()
