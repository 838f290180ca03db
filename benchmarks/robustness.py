"""Robustness across scanners: random split vs leave-one-device-group-out, with and without
adaptation, on AUL (and optionally across simulator profiles).

SHORT-SCHEDULE figures: small detectors trained for a few epochs on the shared CPU, so the
absolute values are far below a full training run; only the gaps between rows of the same run
mean something (and even these are noisy: one seed, one split).

For every split (``random``: a class-stratified 20% of the images; ``group:<G>``: all images of
device group ``G`` held out, ``livus.train.robustness``) and every variant:

* ``baseline``: the detector as trained by ``livus.train.detector`` (geometric augmentation,
  copy-paste);
* ``standardise``: per-image intensity standardisation inside the fan, at training and at test
  (``livus.train.adapt.standardise_intensity``);
* ``style``: style augmentation at training (gamma, gain, contrast, blur/sharpen, grain;
  ``livus.train.adapt.StyleAugmentedSet``);
* ``classifier`` (not a detector variant): a lesion classifier trained on the training images'
  lesions (``livus.train.classifier``, ground-truth outlines), malignancy AUC on the test images'
  lesions;
* ``dann``: gradient-reversal domain classifier on the deepest backbone features, domains = the
  device groups, the held-out group's images used UNLABELLED in the domain loss (unsupervised
  domain adaptation; group splits only)

it trains a detector and reports lesion sensitivity at 0.25 false positives per image and mass
Dice on the held-out images (``livus.evaluate.run``). Results are appended to
``<out>/results.jsonl`` as they finish, so a run cut short still leaves its rows;
``--table`` prints the table of a results file.

Usage::

    python benchmarks/robustness.py --data /tmp/aul_ds --cache runs/cv256/cache_256.npz \
        --epochs 3 --splits random,group:720x576,group:1024x768 --variants baseline,standardise,dann
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from livus.config import DetectorConfig, LivusConfig
from livus.io.dataset import load_dataset
from livus.models.detector import LesionDetector
from livus.train.adapt import BackboneTap, DomainHead, StyleAugmentedSet, standardised_cache, train_one_epoch_dann
from livus.train.datasets import DetectorTrainSet, ModelSpaceCache, build_cache, load_cache, record_stem
from livus.train.detector import _loss_weights, validate
from livus.train.robustness import device_groups, leave_one_group_out_splits
from livus.train.splits import stratified_kfold
from livus.train.trainer import train_one_epoch


def get_cache(ds: Any, cfg: LivusConfig, cache_path: Path | None) -> ModelSpaceCache:
    """The dataset's model-space cache: ``cache_path`` when it holds exactly the dataset's images
    in order (e.g. the detector run's ``cache_256.npz``), else built now."""
    if cache_path is not None and cache_path.is_file():
        cache = load_cache(cache_path)
        if cache.stems == [record_stem(r) for r in ds] and cache.size == cfg.detector.input_size_px:
            return cache
        print(f"{cache_path}: does not match the dataset/size, rebuilding", flush=True)
    cfg.preprocess.input_size_px = cfg.detector.input_size_px
    return build_cache(ds, cfg.preprocess)


def split_indices(ds: Any, split: str, min_group_size: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """``(train_idx, test_idx, groups)`` (indices into ``ds.images``) for ``random`` or ``group:<G>``."""
    groups = device_groups(ds, min_group_size)
    pos = {r.id: i for i, r in enumerate(ds)}
    if split == "random":
        tr, te = stratified_kfold([r.image_class or "unknown" for r in ds], 5, seed)[0]
        return tr, te, groups
    if not split.startswith("group:"):
        raise ValueError(f"unknown split {split!r} (random | group:<name>)")
    name = split.split(":", 1)[1]
    for train_ids, test_ids, g in leave_one_group_out_splits(ds, groups):
        if g == name:
            return np.array([pos[i] for i in train_ids]), np.array([pos[i] for i in test_ids]), groups
    raise ValueError(f"no device group {name!r}; groups: {sorted(set(groups.values()))}")


def train_detector_variant(cfg: LivusConfig, cache: ModelSpaceCache, train_idx: np.ndarray, variant: str,
                           domains: np.ndarray | None = None, target_idx: np.ndarray | None = None) -> LesionDetector:
    """Train one detector on ``cache[train_idx]`` the way the variant says (see module doc)."""
    t = cfg.train
    torch.manual_seed(t.seed)
    model = LesionDetector(cfg.detector)
    weights = _loss_weights(cfg)
    rng = np.random.default_rng(t.seed)
    if variant == "dann":
        assert domains is not None and target_idx is not None
        idx_all = np.concatenate([train_idx, target_idx])
        sub = cache.subset(idx_all)
        dataset: DetectorTrainSet = DetectorTrainSet(sub, augment=t.augment, copy_paste_prob=t.copy_paste_prob, seed=t.seed)
        labelled = np.zeros(len(idx_all), bool)
        labelled[: len(train_idx)] = True
        dom_names = sorted(set(domains[idx_all].tolist()))
        dom = np.array([dom_names.index(d) for d in domains[idx_all]])
        head = DomainHead(cfg.detector.widths[-1], len(dom_names))
        tap = BackboneTap(model)
        params = list(model.parameters()) + list(head.parameters())
    else:
        sub = cache.subset(train_idx)
        cls = StyleAugmentedSet if variant == "style" else DetectorTrainSet
        dataset = cls(sub, augment=t.augment, copy_paste_prob=t.copy_paste_prob, seed=t.seed)
        params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    steps = max(1, math.ceil(len(dataset) / t.batch_size)) * t.epochs + 1
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, total_steps=steps, pct_start=0.15)
    for epoch in range(t.epochs):
        dataset.epoch = epoch
        order = rng.permutation(len(dataset))
        te = time.time()
        if variant == "dann":
            parts = train_one_epoch_dann(model, head, tap, dataset, order, dom, labelled, opt, sched, weights, t.batch_size,
                                         epoch / t.epochs, (epoch + 1) / t.epochs)
        else:
            parts, _, _ = train_one_epoch(model, dataset, order, opt, sched, weights, t.batch_size)
        print(f"    epoch {epoch + 1}/{t.epochs} {time.time() - te:.0f}s " + " ".join(f"{k}={v:.3f}" for k, v in parts.items()
              if k in ("total", "domain", "domain_acc")), flush=True)
    if variant == "dann":
        tap.remove()
    return model.eval()


def classifier_auc(ds: Any, train_idx: np.ndarray, test_idx: np.ndarray, epochs: int, samples: Any = None) -> tuple[float, int, Any]:
    """Malignancy AUC on the lesions of the test images of a lesion classifier trained (short
    schedule, ``livus.train.classifier``) on the lesions of the training images. Returns
    ``(auc, n_test_lesions, samples)`` (samples are reused across splits)."""
    from livus.evaluate.classification import roc_auc
    from livus.models.classifier import predict_logits
    from livus.train.classifier import ClassifierTrainConfig, build_samples, train_model

    cfg = LivusConfig().classifier
    samples = samples if samples is not None else build_samples(ds, cfg)
    known = ~np.isnan(samples.malignant)
    tr = np.flatnonzero(np.isin(samples.image_index, train_idx) & known)
    te = np.flatnonzero(np.isin(samples.image_index, test_idx) & known)
    model = train_model(samples.subset(tr), cfg, ClassifierTrainConfig(epochs=epochs))
    logits = predict_logits(model, samples.eval_crops[te], samples.size[te])["malignancy"]
    y = samples.malignant[te]
    return (roc_auc(y, logits) if len(np.unique(y)) == 2 else math.nan), int(len(te)), samples


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    cfg = LivusConfig()
    cfg.detector = DetectorConfig(input_size_px=args.size)
    if args.tiny:
        cfg.detector = DetectorConfig(input_size_px=args.size, widths=(8, 16, 24, 32), stem_channels=8, fpn_channels=16,
                                      head_channels=8)
    cfg.train.epochs = args.epochs
    cfg.train.batch_size = args.batch
    ds = load_dataset(args.data)
    if args.limit:
        ds.images = ds.images[: args.limit]
    cache = get_cache(ds, cfg, args.cache if not args.limit else None)
    std_cache: ModelSpaceCache | None = None
    samples = None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    for split in args.splits.split(","):
        tr, te, groups = split_indices(ds, split, args.min_group_size, cfg.train.seed)
        domains = np.array([groups[r.id] for r in ds])
        test_recs = [ds.images[i] for i in te]
        for variant in args.variants.split(","):
            if variant == "dann" and split == "random":
                continue
            t0 = time.time()
            if variant == "classifier":
                print(f"== {split} / classifier ({args.classifier_epochs} epochs)", flush=True)
                auc, n_les, samples = classifier_auc(ds, tr, te, args.classifier_epochs, samples)
                row = {"split": split, "variant": "classifier", "train_images": int(len(tr)), "test_images": int(len(te)),
                       "epochs": args.classifier_epochs, "malignancy_auc": auc, "test_lesions": n_les,
                       "seconds": round(time.time() - t0), "data": str(args.data)}
                print("   ", row, flush=True)
                with results.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                continue
            print(f"== {split} / {variant}: train {len(tr)} images, test {len(te)}", flush=True)
            use = cache
            if variant == "standardise":
                std_cache = std_cache if std_cache is not None else standardised_cache(cache)
                use = std_cache
            model = train_detector_variant(cfg, use, tr, variant, domains, te)
            m = validate(model, use.subset(te), test_recs).headline()
            row = {"split": split, "variant": variant, "train_images": int(len(tr)), "test_images": int(len(te)),
                   "epochs": cfg.train.epochs, "input_size_px": cfg.detector.input_size_px, "seconds": round(time.time() - t0),
                   "sens@0.25fp": m.get("sens@0.25fp"), "mass_dice": m.get("mass_dice"), "liver_dice": m.get("liver_dice"),
                   "data": str(args.data), "tiny": bool(args.tiny)}
            print("   ", {k: row[k] for k in ("sens@0.25fp", "mass_dice", "seconds")}, flush=True)
            with results.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    print(table(results))


def table(path: Path) -> str:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    f = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
    lines = ["| data | split | variant | train / test images | epochs | sens@0.25 FP/img | mass Dice | malignancy AUC |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {Path(r['data']).name} | {r['split']} | {r['variant']} | {r['train_images']} / {r['test_images']} | "
                     f"{r['epochs']} | {f(r.get('sens@0.25fp'))} | {f(r.get('mass_dice'))} | {f(r.get('malignancy_auc'))} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/tmp/aul_ds"))
    ap.add_argument("--cache", type=Path, default=None, help="model-space cache of the same dataset (npz)")
    ap.add_argument("--out", type=Path, default=Path("runs/robustness"))
    ap.add_argument("--splits", default="random,group:720x576,group:1024x768")
    ap.add_argument("--variants", default="baseline,standardise,dann")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--classifier-epochs", type=int, default=8, help="epochs of the 'classifier' variant")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-group-size", type=int, default=25)
    ap.add_argument("--limit", type=int, default=0, help="first N images only (smoke runs)")
    ap.add_argument("--tiny", action="store_true", help="tiny network (smoke runs)")
    ap.add_argument("--table", type=Path, default=None, help="only print the table of this results.jsonl")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    run(args)


if __name__ == "__main__":
    main()
