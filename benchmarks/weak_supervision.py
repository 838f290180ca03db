"""Weak supervision on AUL: image-label classifier → CAM → pseudo-boxes → extra lesion crops.

Usage:
    nice -n 5 .venv/bin/python benchmarks/weak_supervision.py --data /tmp/aul_ds [--cache /tmp/aul_cache_256.npz]
        [--test-fold 0] [--epochs 12] [--cls-epochs 12] [--seeds 0 1 2] [--weak-model /tmp/weak.pt]

1. Folds: the classifier/detector 3-fold rule (``stratified_kfold`` by image class, seed 0). ONE
   held-out fold (``--test-fold``); everything is trained on the other two.
2. ``livus.train.weak.ImageClassifier`` trained with image labels (normal/benign/malignant) only,
   on the preprocessed fan (``preprocess_frame``, 256 px model space, the detector's cache).
3. CAM of the image's TRUE class (the weak-supervision setting: the label is known, the box is
   not) on the held-out lesion images: top-peak-inside-mass rate and pseudo-box IoU with the true
   mass box (original pixels); a trivial baseline (fan centroid; box of the median training
   lesion size at the fan centroid) for scale. Also on the training images (in-sample: that is
   where pseudo-boxes for unboxed images come from).
4. "Unboxed images add training data": per seed, a stratified third S of the training lesion
   images keeps its true boxes; the other training images are treated as unboxed. Lesion
   classifiers (``ClassifierConfig()`` defaults, ``train_model``) are trained on
   A: S true boxes; B: S + pseudo-box crops of the unboxed images; C: S + random boxes of the
   same sizes inside the fan (control: image label without localisation); D: all true boxes
   (upper bound). Malignancy AUC on the held-out fold's true-box crops.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from livus.config import ClassifierConfig, PreprocessConfig
from livus.evaluate.classification import roc_auc
from livus.io.dataset import Dataset, load_dataset
from livus.models.classifier import predict_logits
from livus.train.classifier import (
    ClassifierTrainConfig, LesionSamples, _image_folds, _stratified_holdout, build_samples, concat_samples, train_model,
)
from livus.train.datasets import ModelSpaceCache, build_cache, load_cache, record_stem, save_cache
from livus.train.weak import (
    CLASSES, ImageClassifier, WeakConfig, box_iou, cam_peak, box_to_original, check_cam, class_activation_maps, class_indices, predict_classes,
    pseudo_box, pseudo_lesion_dataset, train_image_classifier,
)


def get_cache(ds: Dataset, path: Path | None, size: int) -> ModelSpaceCache:
    """Model-space cache of ``ds`` (``preprocess_frame``), read from ``path`` when it matches."""
    stems = [record_stem(r) for r in ds.images]
    if path is not None and path.is_file():
        cache = load_cache(path)
        if cache.stems == stems and cache.size == size:
            return cache
        print(f"{path} does not match the dataset: rebuilding", flush=True)
    cache = build_cache(ds, PreprocessConfig(input_size_px=size))
    if path is not None:
        save_cache(cache, path)
    return cache


def fan_centroid(valid: np.ndarray) -> tuple[float, float]:
    """Centroid ``(x, y)`` of a fan mask (model pixels)."""
    ys, xs = np.nonzero(valid)
    return float(xs.mean()), float(ys.mean())


def cam_report(name: str, ds: Dataset, cache: ModelSpaceCache, cams: np.ndarray, positions: np.ndarray, frac: float,
               median_box_model: tuple[float, float]) -> dict[str, float]:
    """Peak-inside-mass rate and pseudo-box IoU of ``cams`` (aligned with ``positions``), with the
    fan-centroid baseline; prints one line per measure."""
    inside, ious, base_inside, base_iou, near_edge = [], [], [], [], []
    for cam, i in zip(cams, positions):
        px, py = cam_peak(cam)
        near_edge.append(fan_edge_distance(cache.valid_masks[i], px, py) <= 8)
        rec = ds.images[i]
        mask = ds.read_mask(rec)
        true_box = rec.lesions[0].bbox_xyxy
        lb = cache.letterboxes[i]
        chk = check_cam(cam, lb, mask, true_box, frac)
        inside.append(chk.peak_inside)
        ious.append(chk.iou)
        cx, cy = fan_centroid(cache.valid_masks[i])
        ox, oy = lb.points_to_original(np.array([[cx, cy]]))[0]
        base_inside.append(bool(mask[int(np.clip(round(oy), 0, mask.shape[0] - 1)), int(np.clip(round(ox), 0, mask.shape[1] - 1))] > 0))
        w, h = median_box_model
        base_iou.append(box_iou(box_to_original([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], lb), true_box))
    ious_a = np.asarray(ious)
    out = {"n": len(positions), "peak_inside": float(np.mean(inside)), "iou_mean": float(ious_a.mean()),
           "iou_median": float(np.median(ious_a)), "iou_ge_0.3": float((ious_a >= 0.3).mean()),
           "iou_ge_0.5": float((ious_a >= 0.5).mean()), "base_inside": float(np.mean(base_inside)),
           "base_iou_mean": float(np.mean(base_iou)), "near_edge": float(np.mean(near_edge))}
    print(f"| {name} | {out['n']} | {out['peak_inside']:.3f} | {out['iou_mean']:.3f} | {out['iou_median']:.3f} | "
          f"{out['iou_ge_0.3']:.3f} | {out['iou_ge_0.5']:.3f} | {out['near_edge']:.3f} | {out['base_inside']:.3f} | {out['base_iou_mean']:.3f} |", flush=True)
    return out


def fan_edge_distance(valid: np.ndarray, x: int, y: int) -> float:
    """Distance (model pixels) from pixel ``(x, y)`` to the nearest pixel outside the fan."""
    return float(cv2.distanceTransform((valid > 0).astype(np.uint8), cv2.DIST_L2, 5)[y, x])


def model_boxes(cams: np.ndarray, frac: float) -> list[list[float]]:
    """Pseudo-boxes (model pixels) of each CAM."""
    return [pseudo_box(c, frac)[0] for c in cams]


def random_boxes(like: list[list[float]], valid: np.ndarray, rng: np.random.Generator) -> list[list[float]]:
    """Boxes of the same sizes as ``like`` (model pixels) centred on random fan pixels."""
    out = []
    for box, v in zip(like, valid):
        ys, xs = np.nonzero(v)
        j = int(rng.integers(len(xs)))
        w, h = box[2] - box[0], box[3] - box[1]
        out.append([xs[j] - w / 2, ys[j] - h / 2, xs[j] + w / 2, ys[j] + h / 2])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/aul_ds")
    ap.add_argument("--cache", default=None, help="model-space cache .npz (built with preprocess_frame when missing)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--test-fold", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=12, help="image-label classifier epochs")
    ap.add_argument("--cls-epochs", type=int, default=12, help="lesion classifier epochs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--weak-model", default=None, help="state dict of the image-label classifier: read if present, else written")
    ap.add_argument("--edge-margin", type=int, default=0, help="keep CAM peaks this many model px inside the fan")
    ap.add_argument("--cam-only", action="store_true", help="stop after the CAM table (no lesion-classifier experiment)")
    ap.add_argument("--subset", type=float, default=1 / 3, help="share of training lesion images that keep their boxes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    wcfg = WeakConfig(epochs=args.epochs)
    ds = load_dataset(args.data)
    t0 = time.time()
    cache = get_cache(ds, Path(args.cache) if args.cache else None, args.size)
    print(f"cache {len(cache)} images at {cache.size} px ({time.time() - t0:.0f} s)", flush=True)
    fold_of = _image_folds(ds, 3, 0)
    labels = class_indices(cache.classes)
    train = np.flatnonzero(fold_of != args.test_fold)
    test = np.flatnonzero(fold_of == args.test_fold)
    has_lesion = np.array([len(r.lesions) == 1 for r in ds.images])

    # 1. image-label classifier (no masks, no boxes)
    t0 = time.time()
    weak_path = Path(args.weak_model) if args.weak_model else None
    if weak_path is not None and weak_path.is_file():
        weak = ImageClassifier(wcfg.widths)
        weak.load_state_dict(torch.load(weak_path, map_location="cpu", weights_only=True))
        weak.eval()
        print(f"image-label classifier read from {weak_path} (trained on the folds other than {args.test_fold})", flush=True)
    else:
        log: list[dict] = []
        weak = train_image_classifier(cache.images[train], labels[train], cache.valid_masks[train], wcfg, log)
        print(f"image-label classifier: {len(train)} images, {wcfg.epochs} epochs, {time.time() - t0:.0f} s "
              f"(final loss {log[-1]['loss']:.3f})", flush=True)
        if weak_path is not None:
            torch.save(weak.state_dict(), weak_path)
    probs = predict_classes(weak, cache.images[test])
    acc = float((probs.argmax(1) == labels[test]).mean())
    lesion_auc = roc_auc((labels[test] > 0).astype(float), 1 - probs[:, 0])
    mal_pos = test[labels[test] > 0]
    mal_auc = roc_auc((labels[mal_pos] == 2).astype(float), probs[labels[test] > 0, 2] / probs[labels[test] > 0, 1:].sum(1))
    print(f"held-out fold {args.test_fold} ({len(test)} images): 3-class accuracy {acc:.3f}, lesion-vs-normal AUC "
          f"{lesion_auc:.3f}, malignant-vs-benign AUC (image level) {mal_auc:.3f}", flush=True)

    # 2. CAM → pseudo-boxes vs true masses
    train_les = train[has_lesion[train]]
    test_les = test[has_lesion[test]]
    sizes = np.array([[b[2] - b[0], b[3] - b[1]] for b in
                      (cache.letterboxes[i].boxes_to_model(np.array(ds.images[i].lesions[0].bbox_xyxy))[0] for i in train_les)])
    median_box = (float(np.median(sizes[:, 0])), float(np.median(sizes[:, 1])))
    cams_test = class_activation_maps(weak, cache.images[test_les], labels[test_les], cache.valid_masks[test_les],
                                      edge_margin_px=args.edge_margin)
    pred_cls = 1 + probs[has_lesion[test]][:, 1:].argmax(1)
    cams_test_pred = class_activation_maps(weak, cache.images[test_les], pred_cls, cache.valid_masks[test_les],
                                           edge_margin_px=args.edge_margin)
    cams_train = class_activation_maps(weak, cache.images[train_les], labels[train_les], cache.valid_masks[train_les],
                                       edge_margin_px=args.edge_margin)
    print(f"\nCAM top peak vs true AUL mass (pseudo-box: CAM ≥ {wcfg.cam_frac} × peak, region around the peak; "
          f"original pixels). Baseline: fan centroid / box of the median training lesion size there.")
    print(f"CAM limited to the fan shrunk by {args.edge_margin} model px.")
    print("| images | n | peak inside mass | IoU mean | IoU median | IoU ≥ 0.3 | IoU ≥ 0.5 | peak ≤ 8 px from fan edge | "
          "baseline: centroid inside | baseline IoU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cam_report(f"held-out fold {args.test_fold}, true-class CAM", ds, cache, cams_test, test_les, wcfg.cam_frac, median_box)
    cam_report(f"held-out fold {args.test_fold}, predicted-class CAM", ds, cache, cams_test_pred, test_les, wcfg.cam_frac, median_box)
    cam_report("training folds (in-sample), true-class CAM", ds, cache, cams_train, train_les, wcfg.cam_frac, median_box)

    if args.cam_only:
        return
    # 3. do unboxed images add training data?
    ccfg = ClassifierConfig()
    tcfg = ClassifierTrainConfig(epochs=args.cls_epochs, num_threads=1)
    samples = build_samples(ds, ccfg)
    test_s = samples.subset(np.flatnonzero(np.isin(samples.image_index, test_les)))
    pos_of = {int(i): k for k, i in enumerate(train_les)}
    results: dict[str, list[float]] = {"A: S true boxes": [], "B: S + pseudo-boxes": [], "C: S + random boxes (control)": [],
                                       "D: all true boxes (upper bound)": []}
    counts: dict[str, int] = {}

    def auc_of(train_s: LesionSamples, seed: int) -> float:
        tc = ClassifierTrainConfig(**{**tcfg.__dict__, "seed": seed})
        model = train_model(train_s, ccfg, tc)
        return roc_auc(test_s.malignant, predict_logits(model, test_s.eval_crops, test_s.size)["malignancy"])

    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        _, keep_rel = _stratified_holdout(labels[train_les], args.subset, seed)
        s_imgs = train_les[keep_rel]
        unboxed = np.setdiff1d(train_les, s_imgs)
        cams_u = cams_train[[pos_of[int(i)] for i in unboxed]]
        boxes_m = model_boxes(cams_u, wcfg.cam_frac)
        pseudo = [box_to_original(b, cache.letterboxes[i]) for b, i in zip(boxes_m, unboxed)]
        rand = [box_to_original(b, cache.letterboxes[i]) for b, i in zip(random_boxes(boxes_m, cache.valid_masks[unboxed], rng), unboxed)]
        s_true = samples.subset(np.flatnonzero(np.isin(samples.image_index, s_imgs)))
        s_pseudo = build_samples(pseudo_lesion_dataset(ds, unboxed.tolist(), pseudo), ccfg)
        s_rand = build_samples(pseudo_lesion_dataset(ds, unboxed.tolist(), rand), ccfg)
        s_all = samples.subset(np.flatnonzero(np.isin(samples.image_index, train_les)))
        variants = {"A: S true boxes": s_true, "B: S + pseudo-boxes": concat_samples(s_true, s_pseudo),
                    "C: S + random boxes (control)": concat_samples(s_true, s_rand), "D: all true boxes (upper bound)": s_all}
        for name, tr in variants.items():
            t1 = time.time()
            results[name].append(auc_of(tr, seed))
            counts[name] = len(tr)
            print(f"seed {seed} {name}: {len(tr)} training crops, held-out AUC {results[name][-1]:.3f} ({time.time() - t1:.0f} s)", flush=True)

    print(f"\nMalignancy AUC on held-out fold {args.test_fold} ({len(test_s)} lesions, true-box crops); S = {args.subset:.2f} "
          f"of the training lesion images; lesion classifier {tcfg.epochs} epochs; seeds {args.seeds} (S and training re-drawn)")
    print("| training data | crops | AUC per seed | mean AUC |")
    print("|---|---|---|---|")
    for name, aucs in results.items():
        print(f"| {name} | {counts[name]} | {' / '.join(f'{a:.3f}' for a in aucs)} | {np.mean(aucs):.3f} |")
    print(f"(classes: {', '.join(CLASSES)}; CAM frac {wcfg.cam_frac}; image classifier widths {wcfg.widths})")


if __name__ == "__main__":
    main()
