"""Detector input size: speed vs how large AUL lesions are in model pixels (and, given trained
runs, measured small-lesion recall).

Prints, for input sides 256/384/512: the CPU forward time (1 thread, fastest of 20 passes,
default DetectorConfig), and for AUL lesions the long axis in MODEL pixels after the same
preprocessing as inference (fan crop + letterbox) — in particular how many lesions under
60 original px shrink below 8 model px (two heatmap cells). With ``--runs RUN...`` (run
folders of ``livus train detector --folds K`` at different sizes) it also prints each run's
fold-0 validation figures, so recall can be weighed against speed.

Usage: python benchmarks/detector_input_size.py --data /tmp/aul_ds [--runs runs/cv256 runs/cv384]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from livus.config import DetectorConfig, PreprocessConfig
from livus.evaluate.detection import largest_extent
from livus.io.dataset import load_dataset
from livus.models.detector import LesionDetector


def forward_ms(size: int, repeats: int = 20) -> float:
    """Fastest of ``repeats`` forward passes (ms): on a shared machine the minimum is the figure
    least disturbed by other processes."""
    model = LesionDetector(DetectorConfig(input_size_px=size)).eval()
    x = torch.rand(1, 1, size, size)
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            t = time.perf_counter()
            model(x)
            if i >= 2:
                times.append((time.perf_counter() - t) * 1000)
    return min(times)


def lesion_sizes_model_px(data_dir: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(original largest extent, model-pixel largest extent) of every lesion."""
    from livus.preprocess.pipeline import preprocess_frame
    from livus.train.datasets import frame_for_record

    ds = load_dataset(data_dir)
    orig, model = [], []
    for rec in ds:
        if not rec.lesions:
            continue
        pre = preprocess_frame(frame_for_record(ds, rec), PreprocessConfig(input_size_px=size))
        for les in rec.lesions:
            e = largest_extent(les.polygon_px)
            orig.append(e)
            model.append(e * pre.letterbox.scale)
    return np.array(orig), np.array(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="AUL in livus dataset format")
    ap.add_argument("--runs", type=Path, nargs="*", default=[])
    ap.add_argument("--sizes", type=int, nargs="*", default=[256, 384, 512])
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("side  forward_ms(1 thread, min of 20)  lesions<60px: median model px, share < 8 model px")
    for s in args.sizes:
        line = f"{s:4d}  {forward_ms(s):8.1f}"
        if args.data is not None:
            o, m = lesion_sizes_model_px(args.data, s)
            small = o < 60
            line += (f"            n={int(small.sum())}  median {np.median(m[small]):.1f} px  <8px {np.mean(m[small] < 8):.2f}"
                     f"  (smallest lesion {m.min():.1f} model px)")
        print(line, flush=True)
    for run in args.runs:
        p = run / "fold0" / "headline.json"
        if p.is_file():
            h = json.loads(p.read_text())
            print(f"{run}: fold0 " + ", ".join(f"{k}={v:.3f}" for k, v in h.items()))
        else:
            print(f"{run}: no fold0/headline.json yet")


if __name__ == "__main__":
    main()
