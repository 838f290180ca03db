"""Time-sliced vs random split on simulated data (acquisition dates), detector and classifier;
optionally the simulated-only detector tested on AUL.

For one simulated dataset (``livus simulate``; written first with ``--simulate N`` when the
folder does not exist) and one *scenario*:

* ``as-simulated``: the dates the simulator wrote. They are drawn independently of scanner and
  scene (first visit uniform over two years, a visit every ~30 days), so the time-sliced split
  is expected to match the random one within noise: a check of the split code, not of drift;
* ``late:<device>``: the images of ``<device>`` re-dated after all others (a scanner bought
  later, ``livus.train.robustness.introduce_device_late``): the time-sliced test part is then
  mostly that scanner's images — drift in time that the simulator itself does not model;

two splits of the same sizes:

* ``time``: ``time_sliced_split(ds, fraction)`` — the latest acquisitions are the test part,
  patients already seen in training are dropped from it;
* ``random``: ``random_split_like`` — patient-disjoint random split with the same image counts;

and for each split:

* ``detector``: ``livus.train.detector.train_run`` (the training recipe of the shipped model:
  hard-example sampler, copy-paste, augmentation; ``--epochs``/``--lr``), validated every
  ``--eval-every`` epochs on the test part (lesion sensitivity at 0.25 FP/image, mass Dice), so
  each row also carries the learning curve;
* ``classifier``: a lesion classifier on the training part's lesions (ground-truth outlines,
  ``benchmarks/robustness.py: classifier_auc``), malignancy AUC on the test part's lesions;
* with ``--aul``: the ``time`` split's detector (trained on simulated images only) validated on
  every AUL image with the same FROC metrics.

Rows are appended to ``<out>/results.jsonl`` as they finish; ``--table`` prints the table of a
results file. Short CPU schedules: one seed, one split; only differences within a run mean much.

Usage::

    python benchmarks/robustness_time.py --data /tmp/sim400 --simulate 400 --seed 21 --out /tmp/rt \
        --epochs 16 --lr 6e-3 --aul /tmp/aul_ds --aul-cache runs/cv60/cache_256.npz
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import classifier_auc, get_cache  # noqa: E402  (sibling benchmark script)

from livus.config import DetectorConfig, LivusConfig  # noqa: E402
from livus.io.dataset import Dataset, load_dataset  # noqa: E402
from livus.train.datasets import ModelSpaceCache, save_cache  # noqa: E402
from livus.train.detector import train_run, validate  # noqa: E402
from livus.train.robustness import introduce_device_late, random_split_like, split_cutoff, time_sliced_split  # noqa: E402

# FROC figures; the size-bin sensitivities (original pixels) are at the model's report threshold
HEADLINE_KEYS = ("sens@0.25fp", "sens@1fp", "mass_dice", "sens_lt60", "sens_60to150", "sens_gt150")


def scenario_dataset(ds: Dataset, scenario: str) -> Dataset:
    """The dataset with the dates of ``scenario`` (``as-simulated`` | ``late:<device>``)."""
    if scenario == "as-simulated":
        return ds
    if scenario.startswith("late:"):
        return Dataset(ds.root, introduce_device_late(ds.images, scenario.split(":", 1)[1]), ds.info)
    raise ValueError(f"unknown scenario {scenario!r} (as-simulated | late:<device>)")


def split_pair(ds: Dataset, fraction: float, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"time": (train_idx, test_idx), "random": (...)}``: indices into ``ds.images``."""
    pos = {r.id: i for i, r in enumerate(ds.images)}
    tr, te = time_sliced_split(ds, fraction)
    rtr, rte = random_split_like(ds, len(tr), len(te), seed)
    idx = lambda ids: np.array(sorted(pos[i] for i in ids))  # noqa: E731
    return {"time": (idx(tr), idx(te)), "random": (idx(rtr), idx(rte))}


def devices_of(ds: Dataset, idx: np.ndarray) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in idx:
        d = ds.images[int(i)].device or "?"
        out[d] = out.get(d, 0) + 1
    return dict(sorted(out.items()))


def learning_curve(run_dir: Path) -> list[dict[str, float]]:
    """``[{epoch, sens@0.25fp, mass_dice, loss_total}]`` of the validated epochs in ``log.csv``."""
    rows = list(csv.DictReader((run_dir / "log.csv").open(encoding="utf-8")))
    out = []
    for r in rows:
        if r.get("sens@0.25fp"):
            out.append({"epoch": int(r["epoch"]), "sens@0.25fp": float(r["sens@0.25fp"]),
                        "mass_dice": float(r["mass_dice"]), "loss_total": float(r.get("loss_total") or math.nan)})
    return out


def append(path: Path, row: dict[str, Any]) -> None:
    print("   ", {k: v for k, v in row.items() if k not in ("curve", "devices_test", "data")}, flush=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if not (args.data / "annotations.json").is_file():
        if not args.simulate:
            raise SystemExit(f"{args.data}: no dataset (give --simulate N to write one)")
        from livus.simulate.dataset import simulate_dataset

        print(f"simulating {args.simulate} images into {args.data} (seed {args.seed})", flush=True)
        simulate_dataset(args.data, args.simulate, seed=args.seed)
    cfg = LivusConfig()
    cfg.detector = DetectorConfig(input_size_px=args.size)
    cfg.train.epochs, cfg.train.lr, cfg.train.eval_every, cfg.train.batch_size = args.epochs, args.lr, args.eval_every, args.batch
    base = load_dataset(args.data)
    cache_path = args.data / f"cache_{args.size}.npz"
    cache = get_cache(base, cfg, cache_path)
    if not cache_path.is_file():
        save_cache(cache, cache_path)
    ds = scenario_dataset(base, args.scenario)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    splits = split_pair(ds, args.fraction, args.seed)
    samples = None
    common = {"data": str(args.data), "scenario": args.scenario, "fraction": args.fraction}
    for split in args.splits.split(","):
        tr, te = splits[split]
        info = dict(common, split=split, train_images=int(len(tr)), test_images=int(len(te)),
                    devices_test=devices_of(ds, te))
        if split == "time":
            info["last_train"], info["first_test"] = split_cutoff(ds, [ds.images[i].id for i in tr], [ds.images[i].id for i in te])
        for part in args.parts.split(","):
            t0 = time.time()
            if part == "classifier":
                print(f"== {args.scenario} / {split} / classifier ({args.classifier_epochs} epochs)", flush=True)
                auc, n_les, samples = classifier_auc(ds, tr, te, args.classifier_epochs, samples)
                append(results, dict(info, part="classifier", epochs=args.classifier_epochs, malignancy_auc=auc,
                                     test_lesions=n_les, seconds=round(time.time() - t0)))
                continue
            if part != "detector":
                raise ValueError(f"unknown part {part!r} (detector | classifier)")
            print(f"== {args.scenario} / {split} / detector: train {len(tr)}, test {len(te)}, {args.epochs} epochs", flush=True)
            run_dir = out / f"{args.scenario.replace(':', '_')}_{split}"
            test_recs = [ds.images[i] for i in te]
            model, m = train_run(cfg, cache.subset(tr), cache.subset(te), test_recs, run_dir, progress=False,
                                 meta={"benchmark": "robustness_time", "split": split, "scenario": args.scenario})
            assert m is not None
            h = m.headline()
            append(results, dict(info, part="detector", epochs=args.epochs, lr=args.lr, input_size_px=args.size,
                                 **{k: h.get(k) for k in HEADLINE_KEYS},
                                 test_lesions=m.n_lesions, curve=learning_curve(run_dir), seconds=round(time.time() - t0)))
            if args.aul is not None and split == "time":
                t1 = time.time()
                aul = load_dataset(args.aul)
                acfg = LivusConfig()
                acfg.detector = DetectorConfig(input_size_px=args.size)
                acache = get_cache(aul, acfg, args.aul_cache)
                ma = validate(model, acache, aul.images)
                ha = ma.headline()
                append(results, dict(common, split=f"{split} train part → AUL (all)", part="detector→AUL", train_images=int(len(tr)),
                                     test_images=len(aul.images), epochs=args.epochs, lr=args.lr, input_size_px=args.size,
                                     **{k: ha.get(k) for k in HEADLINE_KEYS},
                                     test_lesions=ma.n_lesions, seconds=round(time.time() - t1), aul=str(args.aul)))
    print(table(results))


def label_stats(cache: ModelSpaceCache, ds: Dataset) -> dict[str, Any]:
    """What the detector sees of the labels, in MODEL pixels: lesion long axis quantiles (px),
    share of lesions under 8 / 16 px (2 / 4 cells of the stride-4 heatmap), lesions lying mostly
    outside the preprocessed fan (``valid_masks``: invisible to the model), and lesion contrast
    = |mean inside − mean of a 4-px ring around it| / ring standard deviation. Also, in ORIGINAL
    pixels, the lowest IoU between an annotation's polygon (what the FROC matches against) and
    the best-overlapping instance of the mask file (what the detector trains on)."""
    import cv2

    from livus.shapes import polygon_mask
    from livus.train.datasets import instance_ellipses

    ious = []
    for rec in ds.images:
        if not rec.lesions or not rec.mask_file:
            continue
        mask = ds.read_mask(rec)
        for les in rec.lesions:
            pm = polygon_mask(les.polygon_px, rec.width, rec.height) > 0
            ious.append(max((float((pm & (mask == v)).sum()) / max(1, int((pm | (mask == v)).sum())) for v in np.unique(mask) if v),
                            default=0.0))

    long_px, contrast, outside = [], [], 0
    for i in range(len(cache)):
        lm, img, val = cache.lesion_masks[i], cache.images[i], cache.valid_masks[i] > 0
        for k in np.unique(lm):
            if not k:
                continue
            m = lm == k
            e = instance_ellipses(m.astype(np.uint8), 1)
            long_px.append(e[0][2] if e else 1.0)
            if (m & val).sum() < 0.5 * m.sum():
                outside += 1
                continue
            ring = (cv2.dilate(m.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & (lm == 0) & val
            if ring.sum() >= 5:
                contrast.append(abs(float(img[m].mean()) - float(img[ring].mean())) / (float(img[ring].std()) + 1e-6))
    L, C = np.array(long_px), np.array(contrast)
    mm = [d for r in ds.images for d in (r.extra or {}).get("lesion_diameters_mm", [])]  # simulated sets only
    return {
        "diameter_mm_q25_50_75": np.percentile(mm, [25, 50, 75]).round(1).tolist() if mm else None,
        "images": len(cache), "lesions": int(len(L)),
        "long_axis_px_q05_25_50_75_95": np.percentile(L, [5, 25, 50, 75, 95]).round(1).tolist(),
        "share_lt8px": round(float((L < 8).mean()), 3), "share_lt16px": round(float((L < 16).mean()), 3),
        "outside_fan": outside, "contrast_q10_25_50_75_90": np.percentile(C, [10, 25, 50, 75, 90]).round(2).tolist(),
        "share_contrast_lt0.3": round(float((C < 0.3).mean()), 3),
        "polygon_vs_mask_iou_min": round(min(ious), 3) if ious else None,
        "polygon_vs_mask_iou_median": round(float(np.median(ious)), 3) if ious else None,
    }


def print_label_stats(args: argparse.Namespace) -> None:
    """``--label-stats``: :func:`label_stats` of the simulated set (and AUL with ``--aul``)."""
    cfg = LivusConfig()
    cfg.detector = DetectorConfig(input_size_px=args.size)
    sets = [("simulated " + args.data.name, args.data, args.data / f"cache_{args.size}.npz")]
    if args.aul is not None:
        sets.append(("AUL " + args.aul.name, args.aul, args.aul_cache))
    for name, path, cache_path in sets:
        ds = load_dataset(path)
        print(f"{name} (model input {args.size} px):", json.dumps(label_stats(get_cache(ds, cfg, cache_path), ds)), flush=True)


def table(path: Path) -> str:
    """Markdown table of a results file (one row per result)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    f = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
    lines = ["| data | scenario | split | part | train / test images | epochs | sens@0.25 FP/img | sens@1 FP/img | mass Dice | "
             "malignancy AUC | learning curve (epoch: sens@0.25 / Dice) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        curve = "; ".join(f"{c['epoch']}: {c['sens@0.25fp']:.2f} / {c['mass_dice']:.2f}" for c in r.get("curve", []))
        lines.append(f"| {Path(r['data']).name} | {r['scenario']} | {r['split']} | {r['part']} | {r['train_images']} / {r['test_images']} | "
                     f"{r['epochs']} | {f(r.get('sens@0.25fp'))} | {f(r.get('sens@1fp'))} | {f(r.get('mass_dice'))} | "
                     f"{f(r.get('malignancy_auc'))} | {curve} |")
    for r in rows:
        if r.get("last_train"):
            lines.append(f"\n{r['scenario']} / time split: last training image {r['last_train']}, first test image "
                         f"{r['first_test']}; test devices {r.get('devices_test')}")
            break
    return "\n".join(lines)


def print_splits_info(args: argparse.Namespace, scenarios: list[str]) -> None:
    """``--splits-info``: per scenario the sizes, cut-off and test devices of both splits, and how
    much the random splits of the scenarios share (they depend on the sizes only, not on dates)."""
    base = load_dataset(args.data)
    randoms = []
    for sc in scenarios:
        ds = scenario_dataset(base, sc)
        sp = split_pair(ds, args.fraction, args.seed)
        (tr, te), (rtr, rte) = sp["time"], sp["random"]
        cut = split_cutoff(ds, [ds.images[i].id for i in tr], [ds.images[i].id for i in te])
        print(f"{sc}: time {len(tr)}/{len(te)} (last train {cut[0]}, first test {cut[1]}), test devices "
              f"{devices_of(ds, te)}; random {len(rtr)}/{len(rte)}, test devices {devices_of(ds, rte)}")
        randoms.append((sc, set(rtr.tolist()), set(rte.tolist())))
    for (a, atr, ate), (b, btr, bte) in zip(randoms, randoms[1:]):
        print(f"random splits {a} vs {b}: {len(ate & bte)} shared test images ({len(ate)} / {len(bte)}), "
              f"{len(atr & btr)} shared training images ({len(atr)} / {len(btr)})")


def curves_table(run_dirs: list[Path]) -> str:
    """Markdown table: per run folder, the figures of each validated epoch (from ``log.csv``),
    so runs cut short can still be compared epoch for epoch."""
    lines = ["| run | epoch | sens@0.25 FP/img | sens@1 FP/img | mass Dice | loss |", "|---|---|---|---|---|---|"]
    for d in run_dirs:
        for r in csv.DictReader((d / "log.csv").open(encoding="utf-8")):
            if r.get("sens@0.25fp"):
                lines.append(f"| {d.name} | {r['epoch']} | {float(r['sens@0.25fp']):.3f} | {float(r['sens@1fp']):.3f} | "
                             f"{float(r['mass_dice']):.3f} | {float(r['loss_total']):.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/livus_sim400"), help="simulated livus dataset")
    ap.add_argument("--simulate", type=int, default=0, help="write N simulated stills to --data first when it is missing")
    ap.add_argument("--seed", type=int, default=21, help="simulator seed and random-split seed")
    ap.add_argument("--scenario", default="as-simulated", help="as-simulated | late:<device>")
    ap.add_argument("--fraction", type=float, default=0.2, help="share of the latest acquisitions in the time-sliced test part")
    ap.add_argument("--out", type=Path, default=Path("runs/robustness_time"))
    ap.add_argument("--splits", default="time,random")
    ap.add_argument("--parts", default="detector,classifier")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--lr", type=float, default=6e-3)
    ap.add_argument("--eval-every", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--classifier-epochs", type=int, default=25)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--aul", type=Path, default=None, help="AUL dataset: also test the time split's detector on it")
    ap.add_argument("--aul-cache", type=Path, default=None, help="model-space cache of the AUL dataset (npz)")
    ap.add_argument("--table", type=Path, default=None, help="only print the table of this results.jsonl")
    ap.add_argument("--label-stats", action="store_true", help="only print lesion sizes/contrast in model pixels")
    ap.add_argument("--curves", type=Path, nargs="+", default=None,
                    help="only print the learning curves (validated epochs of log.csv) of these detector run folders, "
                         "finished or not")
    ap.add_argument("--splits-info", nargs="+", default=None, metavar="SCENARIO",
                    help="only print the splits of these scenarios and the overlap of their random splits")
    args = ap.parse_args()
    if args.splits_info:
        print_splits_info(args, args.splits_info)
        return
    if args.table:
        print(table(args.table))
        return
    if args.curves:
        print(curves_table(args.curves))
        return
    if args.label_stats:
        print_label_stats(args)
        return
    run(args)


if __name__ == "__main__":
    main()
