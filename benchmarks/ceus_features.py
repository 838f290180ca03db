"""CEUS feature heads on held-out simulated clips: hand-crafted time-intensity measurements +
MLP versus a small CNN on phase crops.

Usage: .venv/bin/python benchmarks/ceus_features.py [--clips 200] [--seed 0] [--epochs 300]
       [--cnn-epochs 60] [--kinds mlp,cnn] [--save models/ceus.pt --save-kind mlp] [--threads 1]
       [--cache FILE.pkl]
       .venv/bin/python benchmarks/ceus_features.py --example models/ceus.pt   # the bundled example clip

Simulates ``--clips`` seeded CEUS clips (livus.train.ceus.simulate_ceus_lesions: four convex
scanner profiles, 512x384 frames, random frame times), splits them by clip 70/30, trains each
model kind on the training clips and prints, per kind, the held-out per-feature AUCs reading
the lesion through its annotated polygon, its annotated box (inscribed ellipse) and a jittered
box (an imperfect tracker), with the numbers of clips and lesions and the label counts.
Simulated data only. ``--cache`` keeps the simulated lesions in a pickle (keyed by clips, seed,
frame size and profiles; re-simulated when they differ), so a second run skips the simulation.
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from livus.models.ceus import WASHOUT_CLASSES, CeusConfig, CeusModel, ceus_features_for_lesion, save_ceus_model
from livus.train.ceus import (
    CeusTrainConfig,
    LesionClip,
    cross_validate,
    fit_and_evaluate,
    simulate_ceus_lesions,
    split_by_clip,
)

COLUMNS = (("aphe_auc", "APHE AUC"), ("washout_none_auc", "washout none AUC"), ("washout_late_auc", "late AUC"),
           ("washout_early_auc", "early AUC"), ("washout_acc", "washout acc"), ("capsule_auc", "capsule AUC"),
           ("capsule_auc_hcc_only", "capsule AUC (HCC only)"))


def _counts(lesions: list) -> str:
    aphe = sum(x.aphe for x in lesions)
    wo = Counter(WASHOUT_CLASSES[x.washout] for x in lesions)
    cap = sum(x.capsule for x in lesions)
    return (f"APHE {aphe}/{len(lesions)}, washout " + ", ".join(f"{c} {wo[c]}" for c in WASHOUT_CLASSES)
            + f", capsule {cap} (HCC {sum(x.diagnosis == 'hcc' for x in lesions)})")


def simulated_lesions(tcfg: CeusTrainConfig, cache: Path | None) -> tuple[list[LesionClip], str]:
    """The benchmark's simulated lesions, from ``cache`` when it holds the same simulation."""
    key = {"n_clips": tcfg.n_clips, "seed": tcfg.seed, "image_size": list(tcfg.image_size), "profiles": list(tcfg.profiles)}
    if cache is not None and cache.is_file():
        with open(cache, "rb") as fh:
            data = pickle.load(fh)
        if data.get("key") == key:
            return data["lesions"], f"loaded from {cache} (simulated in {data['sim_s']:.0f} s)"
    t0 = time.time()
    lesions = simulate_ceus_lesions(tcfg.n_clips, tcfg.seed, tcfg.image_size, tcfg.profiles, log=True)
    sim_s = time.time() - t0
    if cache is not None:
        with open(cache, "wb") as fh:
            pickle.dump({"key": key, "lesions": lesions, "sim_s": sim_s}, fh)
    return lesions, f"simulated in {sim_s:.0f} s"


def _row(kind: str, outline: str, r: dict[str, float]) -> str:
    cells = " | ".join(f"{r[k]:.3f}" if np.isfinite(r[k]) else "n/a" for k, _ in COLUMNS)
    return f"| {kind} | {outline} | {cells} | {r['fit_s']:.0f} |" if "fit_s" in r else f"| {kind} | {outline} | {cells} | |"


def _ms_per_lesion(model: CeusModel, lesions: list[LesionClip]) -> float:
    times = []
    for x in lesions:
        t = time.perf_counter()
        ceus_features_for_lesion(x.windows, x.times_s, x.boxes, model, x.polygons)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def example_clip(model_path: Path, labels_dir: Path) -> None:
    """The bundled examples' CEUS clip (examples/labels, simulated HCC) through a saved model."""
    import cv2

    from livus.io.dataset import load_dataset
    from livus.models.ceus import load_ceus_model

    ds = load_dataset(labels_dir)
    recs = sorted((r for r in ds.images if r.seconds_after_injection is not None), key=lambda r: (r.clip_id, r.frame_index))
    frames = [cv2.imread(str(ds.root / r.file_name), cv2.IMREAD_GRAYSCALE) for r in recs]
    times = [float(r.seconds_after_injection) for r in recs]
    boxes = [r.lesions[0].bbox_xyxy if r.lesions else None for r in recs]
    polys = [r.lesions[0].polygon_px if r.lesions else None for r in recs]
    model = load_ceus_model(model_path)
    truth = next(r.lesions[0].ceus for r in recs if r.lesions)
    print(f"example clip {labels_dir} ({len(recs)} frames at {times} s), labels {truth}")
    for name, p in (("box", None), ("polygon", polys)):
        out = ceus_features_for_lesion(frames, times, boxes, model, p)
        print(f"  {model_path} via {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in out.items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=300, help="epochs of the mlp")
    ap.add_argument("--cnn-epochs", type=int, default=60, help="epochs of the cnn (slower per epoch)")
    ap.add_argument("--cache", default=None, help="pickle of the simulated lesions (read if it matches, else written)")
    ap.add_argument("--kinds", default="mlp,cnn")
    ap.add_argument("--cv-folds", type=int, default=3, help="also k-fold CV by clip, pooled out-of-fold (0 = off)")
    ap.add_argument("--cv-kinds", default="mlp", help="model kinds to cross-validate")
    ap.add_argument("--save", default=None, help="write the model of --save-kind here (e.g. models/ceus.pt)")
    ap.add_argument("--save-kind", default="mlp")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--example", default=None, help="only run this saved model on examples/labels' CEUS clip")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.example:
        example_clip(Path(args.example), Path("examples/labels"))
        return
    tcfg = CeusTrainConfig(n_clips=args.clips, seed=args.seed, epochs=args.epochs)
    lesions, how = simulated_lesions(tcfg, Path(args.cache) if args.cache else None)
    train, test = split_by_clip(lesions, tcfg.test_fraction, tcfg.seed)
    n_clips = len({x.clip_id for x in lesions})
    print(f"{args.clips} simulated CEUS clips, {n_clips} with a lesion in >= 3 frames "
          f"({len(lesions)} lesions, {sum(len(x.times_s) for x in lesions)} lesion-frames, "
          f"{tcfg.image_size[0]}x{tcfg.image_size[1]}, profiles {', '.join(tcfg.profiles)}), {how}")
    print(f"train: {len({x.clip_id for x in train})} clips, {len(train)} lesions ({_counts(train)})")
    print(f"held-out test: {len({x.clip_id for x in test})} clips, {len(test)} lesions ({_counts(test)})")
    print(f"diagnoses in test: {dict(Counter(x.diagnosis for x in test))}")
    header = "| model | test outline | " + " | ".join(c[1] for c in COLUMNS) + " | fit s |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for kind in args.kinds.split(","):
        cfg = CeusConfig(kind=kind)
        epochs = args.cnn_epochs if kind == "cnn" else args.epochs
        model, res = fit_and_evaluate(train, test, cfg, replace(tcfg, epochs=epochs))
        lines += [_row(kind, outline, r) for outline, r in res.items()]
        n_params = sum(p.numel() for p in model.parameters())
        ms = _ms_per_lesion(model, test)
        print(f"{kind}: {n_params} parameters, {epochs} epochs, ceus_features_for_lesion {ms:.1f} ms per lesion "
              f"(median over held-out lesions, {args.threads} thread)", flush=True)
        if args.save and kind == args.save_kind:
            model.meta = {"trained_on": "simulated CEUS clips only (livus.simulate); no real CEUS validation",
                          "n_clips": n_clips, "n_train_lesions": len(train), "n_test_lesions": len(test),
                          "seed": args.seed, "epochs": epochs, "held_out": res}
            save_ceus_model(model, args.save)
            print(f"saved {kind} model to {args.save} ({Path(args.save).stat().st_size / 1e3:.0f} kB)")
    print(f"\nheld-out split (train {len({x.clip_id for x in train})} clips / test {len({x.clip_id for x in test})} clips):")
    print("\n".join(lines))
    if args.cv_folds > 0:
        lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
        for kind in args.cv_kinds.split(","):
            epochs = args.cnn_epochs if kind == "cnn" else args.epochs
            cv = cross_validate(lesions, CeusConfig(kind=kind), replace(tcfg, epochs=epochs), args.cv_folds)
            lines += [_row(kind, outline, r) for outline, r in cv.items()]
        print(f"\n{args.cv_folds}-fold cross-validation by clip, pooled out-of-fold predictions ({len(lesions)} lesions: "
              f"{_counts(lesions)}):")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
