"""CPU cost of one detector training sample (docs/scale.md, the GPU plan): the data side
(``DetectorTrainSet[i]``: augmentation + targets, what each DDP rank does serially in its own
process) and one optimiser step of a batch on the CPU (forward + backward + AdamW), per image.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_sample_cost.py CACHE.npz [--n 64] [--batch 16] [--encoder E]

CACHE: a run folder's ``cache_<S>.npz`` (``livus train detector`` writes it).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from livus.config import LivusConfig
from livus.models.detector import LesionDetector
from livus.models.losses import detector_loss
from livus.train.datasets import DetectorTrainSet, load_cache
from livus.train.detector import _loss_weights
from livus.train.trainer import collate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--encoder", default=None, help="resnet_lite (the shipped from-scratch detector) or "
                                                     "efficientnet_lite0 (the config default); default: config")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = LivusConfig()
    t = cfg.train
    cache = load_cache(args.cache)
    cfg.detector.input_size_px = int(cache.images.shape[-1])
    if args.encoder:
        cfg.detector.encoder = args.encoder
    ds = DetectorTrainSet(cache, augment=t.augment, copy_paste_prob=t.copy_paste_prob, seed=0, backend=t.augment_backend,
                          scanner_augment=t.scanner_augment)
    n = min(args.n, len(ds))
    c0 = time.process_time()
    items = [ds[i] for i in range(n)]
    data_ms = 1000 * (time.process_time() - c0) / n
    model = LesionDetector(cfg.detector, pretrained=False).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = collate(items[: args.batch])
    steps = max(1, n // args.batch)
    c0 = time.process_time()
    for _ in range(steps):
        total, _, _ = detector_loss(model(batch["image"]), batch, _loss_weights(cfg))
        opt.zero_grad()
        total.backward()
        opt.step()
    step_ms = 1000 * (time.process_time() - c0) / (steps * args.batch)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; input {cfg.detector.input_size_px} px, "
          f"encoder {cfg.detector.encoder}, {n} samples")
    print(f"data (augmentation + targets): {data_ms:.1f} ms CPU per sample")
    print(f"optimiser step on CPU, 1 thread: {step_ms:.1f} ms CPU per image (batch {args.batch})")


if __name__ == "__main__":
    main()
