"""Lesion classifier speed: crop + forward (classify_lesions) and Grad-CAM per lesion, CPU.

Usage: .venv/bin/python benchmarks/classifier_speed.py [--model models/classifier.pt] [--threads 1]
Prints the model file size, parameter count and median milliseconds per lesion.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from livus.explain.gradcam import gradcam_lesion
from livus.models.classifier import LesionClassifier, classify_lesions, load_classifier
from livus.types import Lesion


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/classifier.pt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = Path(args.model)
    model = load_classifier(path) if path.is_file() else LesionClassifier().eval()
    rng = np.random.default_rng(0)
    image = (rng.random((768, 1024)) * 255).astype(np.uint8)
    lesions = [Lesion(i, 0.9, (200.0 + 150 * i, 380.0), 120.0 + 40 * i, 90.0, 20.0 * i) for i in range(4)]
    classify_lesions(model, image, lesions[:1])  # warm-up
    one = _median_ms(lambda: classify_lesions(model, image, lesions[:1]), args.repeats)
    four = _median_ms(lambda: classify_lesions(model, image, lesions), args.repeats)
    cam = _median_ms(lambda: gradcam_lesion(model, image, lesions[0]), args.repeats)
    n_params = sum(p.numel() for p in model.parameters())
    size = f"{path.stat().st_size / 1e6:.2f} MB" if path.is_file() else "(untrained, no file)"
    print(f"model {path}: {size}, {n_params / 1e6:.3f} M parameters, tta_flip={model.cfg.tta_flip}, threads={args.threads}")
    print(f"classify_lesions: {one:.1f} ms for 1 lesion, {four / 4:.1f} ms per lesion in a batch of 4")
    print(f"gradcam_lesion: {cam:.1f} ms per lesion (1024x768 image)")


if __name__ == "__main__":
    main()
