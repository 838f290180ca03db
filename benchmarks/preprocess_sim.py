"""Preprocessing accuracy on simulated data (labels known): fan IoU per device profile, overlay
recall / tissue loss, depth-ruler pixel spacing error, keyframe choice on clips.

Usage: python benchmarks/preprocess_sim.py [DATASET_DIR] [--n 40] [--clips 40]
(without a folder, a dataset is simulated into a temp folder with ``livus.simulate``; ``--clips``
simulates that many extra 20-frame B-mode clips in memory for the keyframe comparison).
Targets: overlay recall >= 0.9 with < 1% tissue removed; ruler spacing within 3%; keyframes
with a lower share of shadowed/out-of-liver frames than a fixed interval.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np

from livus.io.dataset import Dataset, load_dataset
from livus.preprocess.fan import detect_fan, mask_iou
from livus.preprocess.keyframes import select_keyframes
from livus.preprocess.overlays import detect_overlays
from livus.preprocess.spacing import estimate_spacing_from_ruler
from livus.shapes import polygon_mask
from livus.types import Frame


def still_metrics(ds: Dataset) -> None:
    ious = collections.defaultdict(list)
    hits = truth_n = tissue_lost = tissue_n = 0
    errors, found, n_spacing = [], 0, 0
    for rec in ds:
        if rec.clip_id is not None:
            continue
        grey = ds.read_image(rec)
        fan = detect_fan(grey)
        if rec.fan_polygon:
            truth_fan = polygon_mask(rec.fan_polygon, rec.width, rec.height)
            ious[rec.device or "?"].append(mask_iou(fan.mask, truth_fan))
        ov_truth = ds.read_overlay_mask(rec)
        ov = detect_overlays(grey, fan.mask)
        if ov_truth is not None:
            t = ov_truth > 0
            hits += int((ov[t] > 0).sum())
            truth_n += int(t.sum())
            tissue = (~t) & (truth_fan > 0) if rec.fan_polygon else ~t
            tissue_lost += int((ov[tissue] > 0).sum())
            tissue_n += int(tissue.sum())
        if rec.pixel_spacing_mm is not None:
            n_spacing += 1
            ruler = estimate_spacing_from_ruler(grey, fan.mask)
            if ruler is not None:
                found += 1
                errors.append(abs(ruler.mm_per_px - rec.pixel_spacing_mm[1]) / rec.pixel_spacing_mm[1])
    print("fan IoU on simulated stills (per profile): median / min")
    for dev, v in sorted(ious.items()):
        print(f"  {dev:16s} n={len(v):3d}  {np.median(v):.4f} / {np.min(v):.4f}")
    if truth_n:
        print(f"overlay recall {hits / truth_n:.4f} (target >= 0.9); tissue removed {tissue_lost / max(1, tissue_n):.4%} (target < 1%)")
    if n_spacing:
        e = np.array(errors) if errors else np.array([np.nan])
        print(f"ruler found in {found}/{n_spacing} images; spacing error median {np.nanmedian(e):.2%}, "
              f"max {np.nanmax(e):.2%}, share within 3% {np.mean(e <= 0.03) if errors else 0:.3f}")


def clip_metrics(ds: Dataset, interval: int) -> None:
    clips = collections.defaultdict(list)
    for rec in ds:
        if rec.clip_id is not None and not rec.extra.get("mode") == "ceus" and "ceus" not in rec.clip_id:
            clips[rec.clip_id].append(rec)
    if not clips:
        return
    bad = {"shadowed", "out_of_liver"}
    sel_bad = sel_n = fix_bad = fix_n = all_bad = all_n = 0
    for cid, recs in clips.items():
        recs.sort(key=lambda r: r.frame_index or 0)
        frames = [Frame(pixels=ds.read_image(r), source=cid, frame_index=r.frame_index or 0) for r in recs]
        labels = [r.extra.get("quality", "good") for r in recs]
        q = select_keyframes(frames, mode="quality", interval=interval)
        f = select_keyframes(frames, mode="interval", interval=interval)
        sel_bad += sum(labels[i] in bad for i in q)
        sel_n += len(q)
        fix_bad += sum(labels[i] in bad for i in f)
        fix_n += len(f)
        all_bad += sum(lab in bad for lab in labels)
        all_n += len(labels)
    print(f"keyframes over {len(clips)} B-mode clips (interval {interval}): shadowed/out-of-liver share "
          f"quality {sel_bad / sel_n:.3f} vs fixed interval {fix_bad / fix_n:.3f} (all frames {all_bad / all_n:.3f})")


def simulated_clip_metrics(n_clips: int, seed: int, interval: int) -> None:
    """Keyframe comparison on ``n_clips`` clips simulated in memory (labels from
    ``SimulatedImage.extra["quality"]``), per interval-sized selection."""
    from datetime import datetime

    import numpy as np

    from livus.simulate.clips import simulate_bmode_clip
    from livus.simulate.dataset import make_patients
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache, overlay_info_for

    rng = np.random.default_rng(seed)
    cache = GeometryCache()
    patients = make_patients(rng, max(3, n_clips), None)
    bad = {"shadowed", "out_of_liver"}
    q_bad = f_bad = q_n = f_n = 0
    for k in range(n_clips):
        pat = patients[k % len(patients)]
        geom = cache.get(pat.profile)
        scene = sample_scene(rng, geom, "malignant" if rng.random() < 0.5 else "benign")
        sims = simulate_bmode_clip(rng, geom, scene, 20, 10.0, overlay_info_for(pat.profile, pat.name, pat.patient_id, datetime(2024, 1, 1)))
        frames = [Frame(pixels=f.image, source=f"clip{k}", frame_index=i) for i, f in enumerate(sims)]
        labels = [f.extra.get("quality", "good") for f in sims]
        q = select_keyframes(frames, mode="quality", interval=interval)
        f = select_keyframes(frames, mode="interval", interval=interval)
        q_bad += sum(labels[i] in bad for i in q)
        f_bad += sum(labels[i] in bad for i in f)
        q_n += len(q)
        f_n += len(f)
    print(f"keyframes over {n_clips} simulated clips (interval {interval}): shadowed/out-of-liver share "
          f"quality {q_bad / q_n:.3f} ({q_bad}/{q_n}) vs fixed interval {f_bad / f_n:.3f} ({f_bad}/{f_n})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--interval", type=int, default=4)
    ap.add_argument("--clips", type=int, default=0, help="extra clips simulated in memory for keyframes")
    args = ap.parse_args(argv)
    if args.dataset:
        root = Path(args.dataset)
    else:
        from livus.simulate.dataset import simulate_dataset

        root = Path(tempfile.mkdtemp(prefix="livus_sim_"))
        simulate_dataset(root, args.n, clips=True, seed=args.seed)
    ds = load_dataset(root)
    still_metrics(ds)
    clip_metrics(ds, args.interval)
    if args.clips:
        simulated_clip_metrics(args.clips, args.seed + 1000, args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
