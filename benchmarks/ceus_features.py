"""CEUS feature heads on held-out simulated clips: hand-crafted time-intensity measurements +
MLP versus a small CNN on phase crops.

Usage: .venv/bin/python benchmarks/ceus_features.py [--clips 200] [--seed 0] [--epochs 300]
       [--kinds mlp,cnn] [--save models/ceus.pt --save-kind mlp] [--threads 1]

Simulates ``--clips`` seeded CEUS clips (livus.train.ceus.simulate_ceus_lesions: four convex
scanner profiles, 512x384 frames, random frame times), splits them by clip 70/30, trains each
model kind on the training clips and prints, per kind, the held-out per-feature AUCs reading
the lesion through its annotated polygon, its annotated box (inscribed ellipse) and a jittered
box (an imperfect tracker), with the numbers of clips and lesions and the label counts.
Simulated data only.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from livus.models.ceus import WASHOUT_CLASSES, CeusConfig, save_ceus_model
from livus.train.ceus import CeusTrainConfig, fit_and_evaluate, simulate_ceus_lesions, split_by_clip

COLUMNS = (("aphe_auc", "APHE AUC"), ("washout_none_auc", "washout none AUC"), ("washout_late_auc", "late AUC"),
           ("washout_early_auc", "early AUC"), ("washout_acc", "washout acc"), ("capsule_auc", "capsule AUC"),
           ("capsule_auc_hcc_only", "capsule AUC (HCC only)"))


def _counts(lesions: list) -> str:
    aphe = sum(x.aphe for x in lesions)
    wo = Counter(WASHOUT_CLASSES[x.washout] for x in lesions)
    cap = sum(x.capsule for x in lesions)
    return (f"APHE {aphe}/{len(lesions)}, washout " + ", ".join(f"{c} {wo[c]}" for c in WASHOUT_CLASSES)
            + f", capsule {cap} (HCC {sum(x.diagnosis == 'hcc' for x in lesions)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--kinds", default="mlp,cnn")
    ap.add_argument("--save", default=None, help="write the model of --save-kind here (e.g. models/ceus.pt)")
    ap.add_argument("--save-kind", default="mlp")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tcfg = CeusTrainConfig(n_clips=args.clips, seed=args.seed, epochs=args.epochs)
    t0 = time.time()
    lesions = simulate_ceus_lesions(tcfg.n_clips, tcfg.seed, tcfg.image_size, tcfg.profiles, log=True)
    sim_s = time.time() - t0
    train, test = split_by_clip(lesions, tcfg.test_fraction, tcfg.seed)
    n_clips = len({x.clip_id for x in lesions})
    print(f"simulated {n_clips} CEUS clips ({sum(len(x.times_s) for x in lesions)} lesion-frames, "
          f"{tcfg.image_size[0]}x{tcfg.image_size[1]}, profiles {', '.join(tcfg.profiles)}) in {sim_s:.0f} s")
    print(f"train: {len({x.clip_id for x in train})} clips, {len(train)} lesions ({_counts(train)})")
    print(f"held-out test: {len({x.clip_id for x in test})} clips, {len(test)} lesions ({_counts(test)})")
    print(f"diagnoses in test: {dict(Counter(x.diagnosis for x in test))}")
    header = "| model | test outline | " + " | ".join(c[1] for c in COLUMNS) + " | fit s |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for kind in args.kinds.split(","):
        cfg = CeusConfig(kind=kind)
        model, res = fit_and_evaluate(train, test, cfg, tcfg)
        for outline, r in res.items():
            cells = " | ".join(f"{r[k]:.3f}" if np.isfinite(r[k]) else "n/a" for k, _ in COLUMNS)
            fit = f"{r['fit_s']:.0f}" if "fit_s" in r else ""
            lines.append(f"| {kind} | {outline} | {cells} | {fit} |")
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{kind}: {n_params} parameters", flush=True)
        if args.save and kind == args.save_kind:
            model.meta = {"trained_on": "simulated CEUS clips only (livus.simulate); no real CEUS validation",
                          "n_clips": n_clips, "n_train_lesions": len(train), "n_test_lesions": len(test),
                          "seed": args.seed, "epochs": args.epochs, "held_out": res}
            save_ceus_model(model, args.save)
            print(f"saved {kind} model to {args.save} ({Path(args.save).stat().st_size / 1e3:.0f} kB)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
