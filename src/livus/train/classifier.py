"""Training and cross-validation of the lesion classifier (``livus train classifier``).

Data: one sample per annotated lesion of a livus dataset (ground-truth outlines), cropped with
the crop rule of :mod:`livus.preprocess.crops`. Labels: ``malignant`` (0/1) and the B-mode
``features`` where the dataset has them (simulated data); a missing label is NaN and masked in
the loss.

Augmentation: the geometric part (rotation, scale, flip, window shift = box jitter) is composed
into the crop's affine matrix and resampled from a stored context patch around the lesion, so a
rotated or zoomed crop shows real surroundings instead of padding; the mask channel is dilated or
eroded (detector outlines are never exact); grey-level gamma/contrast/noise come from
albumentations.

Cross-validation: stratified k-fold over the dataset's images (``livus.train.splits``, the same
fold rule and seed as the detector), lesion samples inherit their image's fold. Inside each
training part a stratified 20 % is held back to fit the temperature (calibration) and to choose
the operating threshold for sensitivity ≥ ``target_sensitivity``; the held-out fold is then
scored once. The final model is trained on every lesion and carries the median temperature and
threshold of the folds.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from livus.config import ClassifierConfig, to_dict
from livus.io.dataset import Dataset, load_dataset
from livus.models.classifier import LesionClassifier, masked_multitask_loss, predict_logits, save_classifier, size_feature
from livus.preprocess.crops import CropBox, crop_box_for_bbox, crop_matrix, extract_crop, lesion_region_mask, warp_to_crop
from livus.vocab import FEATURE_NAMES

CONTEXT = 1.6  # context patch side / crop side: room for rotation, zoom-out and shift


@dataclass
class ClassifierTrainConfig:
    """Training settings of the lesion classifier."""

    epochs: int = 12  # the shipped model's recipe (pretrained encoder)
    batch_size: int = 16
    lr: float = 1e-3
    pretrained: bool = True  # start a pretrained encoder (ClassifierConfig.encoder) from its ImageNet weights
    encoder_lr_scale: float = 0.3
    weight_decay: float = 1e-3
    feature_weight: float = 0.5
    folds: int = 5
    seed: int = 0
    num_threads: int = 2
    target_sensitivity: float = 0.90
    calib_fraction: float = 0.2  # share of each training part held back for calibration + threshold
    rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    shift_frac: float = 0.06  # window shift, fraction of the crop side
    mask_jitter_frac: float = 0.06  # dilation/erosion radius, fraction of the lesion side
    size_jitter: tuple[float, float] = (0.9, 1.1)  # factor on the lesion side given to the size input
    augment: bool = True
    device: str = "cpu"  # cpu | cuda | mps


@dataclass
class LesionSamples:
    """All lesion samples of a dataset, as arrays.

    ``patches`` (N, 2, P, P) uint8 context patches (grey, mask·255); ``boxes`` (N, 3) crop box
    (cx, cy, side) in PATCH pixels; ``eval_crops`` (N, 2, S, S) float32 un-augmented crops cut
    from the original image exactly as at inference; ``malignant`` (N,) and ``features`` (N, K)
    with NaN for unknown; ``image_index`` (N,) position of the source image in the dataset;
    ``size`` (N,) :func:`size_feature` of the lesion's box side (original pixels).
    """

    patches: np.ndarray
    boxes: np.ndarray
    eval_crops: np.ndarray
    malignant: np.ndarray
    features: np.ndarray
    image_index: np.ndarray
    lesion_side_px: np.ndarray  # lesion box side in patch pixels
    size: np.ndarray

    def __len__(self) -> int:
        return len(self.malignant)

    def subset(self, idx: np.ndarray) -> LesionSamples:
        return LesionSamples(**{k: v[idx] for k, v in asdict_shallow(self).items()})


def asdict_shallow(obj: Any) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}


def concat_samples(a: LesionSamples, b: LesionSamples) -> LesionSamples:
    """Samples of ``a`` then ``b`` (context patches zero-padded to the larger size)."""
    big = max(a.patches.shape[-1], b.patches.shape[-1])

    def pad(p: np.ndarray) -> np.ndarray:
        out = np.zeros((len(p), 2, big, big), np.uint8)
        out[:, :, : p.shape[2], : p.shape[3]] = p
        return out

    parts = {k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dataclass_fields__ if k != "patches"}
    return LesionSamples(patches=np.concatenate([pad(a.patches), pad(b.patches)]), **parts)


def build_samples(ds: Dataset, cfg: ClassifierConfig, patch_px: int | None = None, use_malignancy: bool = True) -> LesionSamples:
    """Crop every labelled lesion of ``ds`` (ground-truth outlines, original pixels).

    ``use_malignancy=False`` keeps only the feature labels (malignancy set to unknown), e.g. for
    simulated lesions whose benign/malignant label is a phantom setting, not a diagnosis."""
    size = cfg.crop_size_px
    patch_px = patch_px or int(round(2 * CONTEXT * size))
    patches, boxes, evals, mal, feats, img_idx, sides, sizes = [], [], [], [], [], [], [], []
    for i, rec in enumerate(ds.images):
        if not rec.lesions:
            continue
        image = ds.read_image(rec)
        for les in rec.lesions:
            if les.malignant is None and not any(v is not None for v in les.features.values()):
                continue
            region = lesion_region_mask(image.shape, les.polygon_px, None)
            box = crop_box_for_bbox(les.bbox_xyxy, cfg.margin, cfg.min_side_px)
            evals.append(extract_crop(image, region, crop_matrix(box, size), size))
            ctx = CropBox(box.cx_px, box.cy_px, box.side_px * CONTEXT)
            p = min(patch_px, max(int(math.ceil(ctx.side_px)), size))
            m = crop_matrix(ctx, p)
            patches.append(np.stack([warp_to_crop(image, m, p), warp_to_crop(region * 255, m, p)]))
            a = ctx.side_px / p  # original pixels per patch pixel
            c = (p - 1) / 2.0
            boxes.append([c, c, box.side_px / a])
            x0, y0, x1, y1 = les.bbox_xyxy
            sides.append(max(x1 - x0, y1 - y0) / a)
            sizes.append(max(x1 - x0, y1 - y0))
            mal.append(np.nan if les.malignant is None or not use_malignancy else float(les.malignant))
            feats.append([np.nan if les.features.get(n) is None else float(les.features[n]) for n in FEATURE_NAMES])
            img_idx.append(i)
    # patches differ in size when lesions are small: pad to the largest (zeros, box unchanged)
    big = max(p.shape[-1] for p in patches)
    padded = np.zeros((len(patches), 2, big, big), np.uint8)
    for k, p in enumerate(patches):
        padded[k, :, : p.shape[1], : p.shape[2]] = p
    return LesionSamples(
        padded, np.asarray(boxes, np.float64), np.stack(evals).astype(np.float32), np.asarray(mal, np.float32),
        np.asarray(feats, np.float32).reshape(len(mal), len(FEATURE_NAMES)), np.asarray(img_idx), np.asarray(sides),
        size_feature(np.asarray(sizes)),
    )


def _intensity_augmenter():  # albumentations pipeline on the grey channel (float32 in [0, 1])
    import albumentations as A

    return A.Compose([
        A.RandomGamma(gamma_limit=(70, 140), p=0.7),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.2, p=0.7),
        A.GaussNoise(std_range=(0.0, 0.03), p=0.3),
    ])


def augmented_crop(samples: LesionSamples, k: int, cfg: ClassifierConfig, tcfg: ClassifierTrainConfig,
                   rng: np.random.Generator, intensity: Any) -> np.ndarray:
    """One randomly augmented ``(2, S, S)`` crop of sample ``k``."""
    patch = samples.patches[k]
    cx, cy, side = samples.boxes[k]
    size = cfg.crop_size_px
    m = crop_matrix(
        CropBox(cx, cy, side), size,
        rotation_deg=float(rng.uniform(-tcfg.rotation_deg, tcfg.rotation_deg)),
        scale=float(rng.uniform(*tcfg.scale_range)),
        flip=bool(rng.random() < 0.5),
        shift_px=tuple(rng.uniform(-tcfg.shift_frac, tcfg.shift_frac, 2) * size),
    )
    mask = patch[1]
    r = int(round(rng.uniform(-tcfg.mask_jitter_frac, tcfg.mask_jitter_frac) * samples.lesion_side_px[k]))
    if r != 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(r) + 1, 2 * abs(r) + 1))
        jittered = cv2.dilate(mask, kernel) if r > 0 else cv2.erode(mask, kernel)
        if jittered.any():
            mask = jittered
    crop = extract_crop(patch[0], mask, m, size)
    crop[0] = intensity(image=crop[0])["image"]
    return np.clip(crop, 0.0, 1.0)


def train_model(samples: LesionSamples, cfg: ClassifierConfig, tcfg: ClassifierTrainConfig, log: list[dict] | None = None,
                tag: str = "") -> LesionClassifier:
    """Train a fresh classifier on ``samples`` (augmented), fixed number of epochs, AdamW with a
    one-cycle schedule."""
    torch.set_num_threads(max(1, tcfg.num_threads))  # small batches: extra threads only contend
    torch.manual_seed(tcfg.seed)
    rng = np.random.default_rng(tcfg.seed)
    intensity = _intensity_augmenter()
    from livus.train.detector import resolve_device

    device = resolve_device(tcfg.device)
    model = LesionClassifier(cfg, pretrained=tcfg.pretrained).to(device)
    enc = [p for p in model.encoder.parameters() if p.requires_grad] if model.encoder is not None else []
    enc_ids = {id(p) for p in enc}
    groups = [{"params": enc, "lr": tcfg.lr * tcfg.encoder_lr_scale},
              {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids], "lr": tcfg.lr}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(samples) / tcfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=tcfg.epochs * steps_per_epoch,
                                                pct_start=0.2)
    mal = torch.from_numpy(samples.malignant)
    feats = torch.from_numpy(samples.features)
    for epoch in range(tcfg.epochs):
        model.train()
        t0 = time.time()
        order = rng.permutation(len(samples))
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * tcfg.batch_size : (b + 1) * tcfg.batch_size]
            if len(idx) < 2:
                continue
            size = samples.size[idx]
            if tcfg.augment:
                x = np.stack([augmented_crop(samples, k, cfg, tcfg, rng, intensity) for k in idx])
                size = size + np.log(rng.uniform(*tcfg.size_jitter, len(idx))).astype(np.float32) / 0.8
            else:
                x = samples.eval_crops[idx]
            out = model(torch.from_numpy(x).to(device), torch.from_numpy(size).to(device))
            losses = masked_multitask_loss(out, mal[idx].to(device), feats[idx].to(device), tcfg.feature_weight)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            sched.step()
            total += losses["total"].item() * len(idx)
        if log is not None:
            log.append({"tag": tag, "epoch": epoch + 1, "loss": total / len(samples), "seconds": round(time.time() - t0, 2)})
    return model.cpu().eval()


def _stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..N-1`` into (fit, held) with ``fraction`` of each class held."""
    rng = np.random.default_rng(seed)
    held = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        rng.shuffle(idx)
        held.extend(idx[: max(1, int(round(fraction * len(idx))))])
    held_mask = np.zeros(len(labels), bool)
    held_mask[held] = True
    return np.flatnonzero(~held_mask), np.flatnonzero(held_mask)


@dataclass
class FoldResult:
    fold: int
    n_train: int
    n_calib: int
    n_test: int
    temperature: float
    threshold: float
    auc: float
    sensitivity: float
    specificity: float
    ece: float
    ece_uncalibrated: float
    feature_auc: dict[str, float] = field(default_factory=dict)


def _image_folds(ds: Dataset, k: int, seed: int) -> np.ndarray:
    """Fold number of every image of ``ds`` (the detector's rule: stratified by image class)."""
    from livus.train.splits import stratified_kfold

    labels = [rec.image_class or "unknown" for rec in ds.images]
    fold_of = np.empty(len(labels), np.int64)
    for f, (_, val) in enumerate(stratified_kfold(labels, k, seed)):
        fold_of[val] = f
    return fold_of


def cross_validate(ds: Dataset, samples: LesionSamples, cfg: ClassifierConfig, tcfg: ClassifierTrainConfig, out_dir: Path,
                   log: list[dict], extra_train: LesionSamples | None = None, extra_test: LesionSamples | None = None,
                   fold_outputs: list[dict[str, Any]] | None = None,
                   ) -> tuple[list[FoldResult], dict[str, np.ndarray]]:
    """k-fold CV of malignant-vs-benign; returns per-fold results and the pooled out-of-fold
    calibrated probabilities (``prob``, ``y``, ``fold``).

    ``extra_train`` (e.g. simulated lesions with feature labels) joins every fold's training
    set; the feature-label AUCs are measured on ``extra_test`` (held-out simulated lesions).
    ``fold_outputs``: when given, one dict per fold is appended (``fold``, ``model``, sample
    positions ``calib_pos``/``test_pos`` and their calibrated probabilities
    ``calib_prob``/``test_prob``), e.g. to fit an ensemble on the same folds."""
    from livus.evaluate.classification import (
        expected_calibration_error, fit_temperature, plot_reliability, roc_auc, sens_spec_at, threshold_for_sensitivity,
    )

    fold_of_image = _image_folds(ds, tcfg.folds, tcfg.seed)
    fold_of = fold_of_image[samples.image_index]
    has_mal = ~np.isnan(samples.malignant)
    results: list[FoldResult] = []
    pooled = {"prob": [], "y": [], "fold": []}
    for f in range(tcfg.folds):
        train_pos = np.flatnonzero(fold_of != f)
        test_pos = np.flatnonzero((fold_of == f) & has_mal)
        strat = np.where(np.isnan(samples.malignant[train_pos]), -1, samples.malignant[train_pos])
        fit_rel, held_rel = _stratified_holdout(strat, tcfg.calib_fraction, tcfg.seed + f)
        fit_pos, calib_pos = train_pos[fit_rel], train_pos[held_rel]
        calib_pos = calib_pos[has_mal[calib_pos]]
        fit = samples.subset(fit_pos)
        model = train_model(fit if extra_train is None else concat_samples(fit, extra_train), cfg, tcfg, log, tag=f"fold{f}")
        z_cal = predict_logits(model, samples.eval_crops[calib_pos], samples.size[calib_pos])["malignancy"]
        y_cal = samples.malignant[calib_pos]
        temp = fit_temperature(z_cal, y_cal)
        thr = threshold_for_sensitivity(y_cal, 1 / (1 + np.exp(-z_cal / temp)), tcfg.target_sensitivity)
        model.temperature.fill_(temp)
        model.threshold.fill_(thr)
        save_classifier(model, out_dir / f"fold{f}.pt", {"fold": f, "folds": tcfg.folds, "seed": tcfg.seed,
                                                        "temperature": temp, "threshold": thr})
        out = predict_logits(model, samples.eval_crops[test_pos], samples.size[test_pos])
        y = samples.malignant[test_pos]
        prob = 1 / (1 + np.exp(-out["malignancy"] / temp))
        op = sens_spec_at(y, prob, thr)
        feat_auc = {}
        if extra_test is not None and len(extra_test):
            z_feat = predict_logits(model, extra_test.eval_crops, extra_test.size)["features"]
            for j, name in enumerate(FEATURE_NAMES):
                fy = extra_test.features[:, j]
                known = ~np.isnan(fy)
                if known.sum() > 0:
                    feat_auc[name] = roc_auc(fy[known], z_feat[known, j])
        res = FoldResult(
            f, len(fit_pos), len(calib_pos), len(test_pos), temp, thr, roc_auc(y, prob), op.sensitivity, op.specificity,
            expected_calibration_error(y, prob), expected_calibration_error(y, 1 / (1 + np.exp(-out["malignancy"]))), feat_auc,
        )
        results.append(res)
        if fold_outputs is not None:
            fold_outputs.append({"fold": f, "model": model, "calib_pos": calib_pos, "test_pos": test_pos,
                                 "calib_prob": 1 / (1 + np.exp(-z_cal / temp)), "test_prob": prob})
        plot_reliability(y, prob, out_dir / f"reliability_fold{f}.png", title=f"fold {f}")
        pooled["prob"].append(prob)
        pooled["y"].append(y)
        pooled["fold"].append(np.full(len(y), f))
        print(f"fold {f}: AUC {res.auc:.3f} sens {res.sensitivity:.3f} spec {res.specificity:.3f} ECE {res.ece:.3f} "
              f"(T={temp:.2f}, thr={thr:.3f})", flush=True)
    pooled_arr = {k: np.concatenate(v) for k, v in pooled.items()}
    plot_reliability(pooled_arr["y"], pooled_arr["prob"], out_dir / "reliability_pooled.png", title="pooled out-of-fold")
    return results, pooled_arr


def cv_table(results: list[FoldResult], target_auc: float = 0.93, target_sens: float = 0.90) -> str:
    """Markdown table of the folds, their mean and the targets."""
    rows = ["| fold | n test | AUC | sensitivity | specificity | threshold | ECE (calibrated) | ECE (raw) |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.fold} | {r.n_test} | {r.auc:.3f} | {r.sensitivity:.3f} | {r.specificity:.3f} | {r.threshold:.3f} | "
                    f"{r.ece:.3f} | {r.ece_uncalibrated:.3f} |")
    mean = lambda k: float(np.mean([getattr(r, k) for r in results]))  # noqa: E731
    rows.append(f"| mean | {sum(r.n_test for r in results)} | {mean('auc'):.3f} | {mean('sensitivity'):.3f} | "
                f"{mean('specificity'):.3f} | {mean('threshold'):.3f} | {mean('ece'):.3f} | {mean('ece_uncalibrated'):.3f} |")
    rows.append(f"| target | | ≥ {target_auc:.2f} | ≥ {target_sens:.2f} | | | | |")
    return "\n".join(rows)


def split_simulated(ds: Dataset, cfg: ClassifierConfig, test_fraction: float, seed: int) -> tuple[LesionSamples, LesionSamples]:
    """Feature-only samples of a simulated dataset, split by image into (train, held-out test)."""
    sim = build_samples(ds, cfg, use_malignancy=False)
    rng = np.random.default_rng(seed)
    images = np.unique(sim.image_index)
    test_images = rng.choice(images, size=int(round(test_fraction * len(images))), replace=False)
    is_test = np.isin(sim.image_index, test_images)
    return sim.subset(np.flatnonzero(~is_test)), sim.subset(np.flatnonzero(is_test))


def _finite_mean(values: list[float]) -> float:
    v = np.asarray(values, float)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


def train_classifier(data_dir: Path, out_dir: Path, folds: int | None = None, cfg: ClassifierConfig | None = None,
                     tcfg: ClassifierTrainConfig | None = None, save_path: Path | None = None,
                     sim_dir: Path | None = None) -> dict[str, Any]:
    """Cross-validate (``folds`` ≥ 2) and train the final model on all lesions of ``data_dir``.

    ``sim_dir``: a simulated dataset whose lesions add B-mode feature labels (their malignancy
    label is not used); 30 % of its images are held out to measure the feature AUCs.

    Writes ``out_dir``: ``cv.json``, ``cv.md``, reliability PNGs, ``log.csv``, the fold models
    ``fold{k}.pt`` (for fold-matched evaluation with the detector) and ``classifier.pt`` (also copied to ``save_path`` when given). Returns the summary dict.
    """
    cfg = cfg or ClassifierConfig()
    tcfg = tcfg or ClassifierTrainConfig()
    if folds is not None:
        tcfg.folds = folds
    torch.set_num_threads(max(1, tcfg.num_threads))
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(data_dir)
    t0 = time.time()
    samples = build_samples(ds, cfg)
    print(f"{len(samples)} lesion crops ({int(np.nansum(samples.malignant))} malignant) in {time.time() - t0:.0f} s", flush=True)
    log: list[dict] = []
    summary: dict[str, Any] = {"data": str(data_dir), "n_lesions": len(samples), "config": to_dict(cfg), "train": to_dict(tcfg)}
    temperature, threshold = 1.0, 0.5
    sim_train = sim_test = None
    if sim_dir is not None:
        sim_train, sim_test = split_simulated(load_dataset(sim_dir), cfg, 0.3, tcfg.seed)
        summary["n_simulated"] = {"train": len(sim_train), "test": len(sim_test)}
        print(f"simulated lesions: {len(sim_train)} train, {len(sim_test)} held out", flush=True)
    if tcfg.folds >= 2:
        results, _ = cross_validate(ds, samples, cfg, tcfg, out_dir, log, sim_train, sim_test)
        table = cv_table(results)
        (out_dir / "cv.md").write_text(table + "\n", encoding="utf-8")
        print(table, flush=True)
        summary["folds"] = [asdict(r) for r in results]
        summary["mean"] = {k: float(np.mean([getattr(r, k) for r in results]))
                           for k in ("auc", "sensitivity", "specificity", "ece", "ece_uncalibrated", "temperature", "threshold")}
        names = sorted({n for r in results for n in r.feature_auc})
        summary["mean"]["feature_auc"] = {n: _finite_mean([r.feature_auc.get(n, np.nan) for r in results]) for n in names}
        temperature = float(np.median([r.temperature for r in results]))
        threshold = float(np.median([r.threshold for r in results]))
    t1 = time.time()
    final = samples if sim_train is None else concat_samples(concat_samples(samples, sim_train), sim_test)
    model = train_model(final, cfg, tcfg, log, tag="final")
    model.temperature.fill_(temperature)
    model.threshold.fill_(threshold)
    summary["final_train_seconds"] = round(time.time() - t1, 1)
    trained_features = [n for j, n in enumerate(FEATURE_NAMES) if (~np.isnan(final.features[:, j])).any()]
    data_name = "AUL (Xu et al. 2022, CC BY 4.0)" if "aul" in str(data_dir).lower() else str(data_dir)
    meta = {"version": time.strftime("%Y%m%d"), "trained_features": trained_features, "data": data_name,
            "n_lesions": len(samples), "n_simulated": len(final) - len(samples), "temperature": temperature, "threshold": threshold,
            "cv_mean": summary.get("mean", {})}
    save_classifier(model, out_dir / "classifier.pt", meta)
    if save_path is not None:
        save_path.parent.mkdir(parents=True, exist_ok=True)
        save_classifier(model, save_path, meta)
    with open(out_dir / "log.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["tag", "epoch", "loss", "seconds"])
        w.writeheader()
        w.writerows(log)
    summary["seconds"] = round(time.time() - t0, 1)
    (out_dir / "cv.json").write_text(json.dumps(summary, indent=1, default=float), encoding="utf-8")
    return summary


def train_classifier_cli(args: argparse.Namespace) -> int:
    """Entry point of ``livus train classifier``."""
    tcfg = ClassifierTrainConfig(device=getattr(args, "device", "cpu") or "cpu")
    if args.epochs is not None:
        tcfg.epochs = args.epochs
    train_classifier(Path(args.data), Path(args.out), folds=args.folds, tcfg=tcfg,
                     save_path=Path(args.save) if args.save else None, sim_dir=Path(args.sim) if args.sim else None)
    return 0
