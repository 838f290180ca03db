"""Cross-validated figures of the pretrained detector with calibrated scores, and of the fused
image label (normal / benign / malignant).

Reads a CV run of ``livus train detector`` (``--cv RUN``: ``RUN/config.yaml``, its cache and
``RUN/fold<k>/detector.pt``) and, optionally, the fold models of ``livus train classifier`` on
the same folds (``--classifier-run DIR`` with ``fold<k>.pt``). Everything is cross-fitted: the
score calibration, the report threshold (0.25 FP/image) and the image-label fusion used on fold
``k`` are fitted on the other folds' held-out predictions only.

Prints per fold and mean: FROC sensitivity, sensitivity < 60 px, mass and liver Dice, the share
of normal images with a reported lesion, ECE of the calibrated candidate scores; three-way
accuracy and per-class recall of the image head alone, the lesion rule alone and the fusion,
with the fusion's ECE. ``--json`` writes all of it plus the calibration, threshold and fusion
fitted on ALL folds (what ships with the final model). ``--tta-flip``: the fold detectors average
each image with its mirror image (``DetectorConfig.tta_flip``); the calibration, threshold and
fusion are then fitted on those outputs and the shipped model must use the same setting.

Usage: python benchmarks/pretrained_cv_report.py --data DATASET --cv runs/cv_pre
           [--classifier-run runs/clf_pre] [--json benchmarks/results/pretrained_cv.json] [--tta-flip]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from livus.evaluate.classification import expected_calibration_error
from livus.models.decode import EVIDENCE_NAMES
from livus.models.detector import load_detector
from livus.models.image_label import IMAGE_CLASSES, ImageLabelFusion, fusion_features, lesion_evidence_label
from livus.train.calibration import (HeldOutPredictions, candidate_ece, concat_predictions, evaluate_calibrated,
                                     cross_fitted_operating_point, fit_score_calibration, held_out_predictions,
                                     report_threshold)
from livus.train.detector import load_cv_run

FP_RATE = 0.25


def fit_fusion(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> ImageLabelFusion:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=2000).fit(x, y)
    return ImageLabelFusion(lr.coef_.tolist(), lr.intercept_.tolist())


def three_way(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy, per-class recall and top-label ECE of ``(N, 3)`` probabilities."""
    pred = probs.argmax(1)
    out = {"accuracy": float(np.mean(pred == y))}
    for k, c in enumerate(IMAGE_CLASSES):
        out[f"recall_{c}"] = float(np.mean(pred[y == k] == k)) if (y == k).any() else math.nan
    out["ece"] = expected_calibration_error((pred == y).astype(int), probs.max(1))
    return out


def confusion(y: np.ndarray, probs: np.ndarray) -> list[list[int]]:
    pred = probs.argmax(1)
    return [[int(np.sum((y == t) & (pred == p))) for p in range(3)] for t in range(3)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--cv", required=True)
    ap.add_argument("--classifier-run", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--evidence", default=",".join(EVIDENCE_NAMES),
                    help="evidence the score calibration may weigh (comma-separated EVIDENCE_NAMES)")
    ap.add_argument("--tta-flip", action="store_true", help="mirror test-time augmentation in every fold detector")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    use = tuple(args.evidence.split(","))
    t0 = time.time()
    run = Path(args.cv)
    cv = load_cv_run(run, Path(args.data))
    folds = cv.folds
    models = {f: load_detector(cv.fold_model_path(f)) for f in folds}
    for m in models.values():
        m.cfg.tta_flip = args.tta_flip
    preds: dict[int, HeldOutPredictions] = {f: held_out_predictions(models[f], *cv.validation(f)) for f in folds}
    per_fold, image_rows = [], []
    fused_inputs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for f in folds:
        coef, thr = cross_fitted_operating_point(preds, f, FP_RATE, use)
        cache_f, recs = cv.validation(f)
        m, normal_rate, results, head = evaluate_calibrated(models[f], cache_f, recs, coef, thr)
        row = {"fold": f, **m.headline(), "normal_with_lesion": normal_rate, "fp_per_image": m.fp_per_image_reported,
               "sens_at_threshold": m.sensitivity_reported, "candidate_ece": candidate_ece(preds[f], coef), "threshold": thr}
        per_fold.append(row)
        print(f"fold {f}: " + ", ".join(f"{k}={v:.3f}" for k, v in row.items() if k != "fold"), flush=True)
        y = np.array([IMAGE_CLASSES.index(r.image_class) if r.image_class in IMAGE_CLASSES else -1 for r in recs])
        mal = [[] for _ in recs]
        if args.classifier_run:
            from livus.models.classifier import classify_lesions, load_classifier
            from livus.train.datasets import frame_for_record

            clf = load_classifier(Path(args.classifier_run) / f"fold{f}.pt")
            for i, (rec, res) in enumerate(zip(recs, results)):
                lesions = [l for l in res.lesions if l.score >= thr]
                if lesions:
                    out = classify_lesions(clf, frame_for_record(cv.dataset, rec).pixels, lesions)
                    mal[i] = [(l.score, o["malignancy"]) for l, o in zip(lesions, out)]
        else:
            for i, res in enumerate(results):  # no classifier: lesions count as benign-or-malignant 50/50
                mal[i] = [(l.score, 0.5) for l in res.lesions if l.score >= thr]
        feats = np.stack([fusion_features(h, s) for h, s in zip(head, mal)])
        rule = np.array([[lesion_evidence_label(s)[c] for c in IMAGE_CLASSES] for s in mal])
        fused_inputs[f] = (feats, y, head, rule)
    # image label: head, rule and fusion (fusion weights cross-fitted on the other folds)
    head_all, rule_all, fused_all, y_all = [], [], [], []
    for f in folds:
        feats, y, head, rule = fused_inputs[f]
        other = [g for g in folds if g != f] or [f]  # one fold only (a preview): in-sample
        ox = np.concatenate([fused_inputs[g][0] for g in other])
        oy = np.concatenate([fused_inputs[g][1] for g in other])
        keep = oy >= 0
        fusion = fit_fusion(ox[keep], oy[keep])
        fused = np.stack([fusion.probabilities(x) for x in feats])
        k = y >= 0
        image_rows.append({"fold": f, **{f"head_{a}": b for a, b in three_way(y[k], head[k]).items()},
                           **{f"rule_{a}": b for a, b in three_way(y[k], rule[k]).items()},
                           **{f"fused_{a}": b for a, b in three_way(y[k], fused[k]).items()}})
        head_all.append(head[k]); rule_all.append(rule[k]); fused_all.append(fused[k]); y_all.append(y[k])
    y_cat = np.concatenate(y_all)
    pooled = {"head": three_way(y_cat, np.concatenate(head_all)), "rule": three_way(y_cat, np.concatenate(rule_all)),
              "fused": three_way(y_cat, np.concatenate(fused_all)),
              "fused_confusion": confusion(y_cat, np.concatenate(fused_all))}
    # what ships: calibration, threshold and fusion fitted on every fold's held-out predictions
    everything = concat_predictions([preds[f] for f in folds])
    coef_all = fit_score_calibration(everything.evidence, everything.is_true, use=use)
    thr_all = report_threshold(everything, coef_all, FP_RATE)
    fx = np.concatenate([fused_inputs[f][0] for f in folds])
    fy = np.concatenate([fused_inputs[f][1] for f in folds])
    fusion_all = fit_fusion(fx[fy >= 0], fy[fy >= 0])
    keys = [k for k in per_fold[0] if k != "fold"]
    mean = {k: float(np.nanmean([r[k] for r in per_fold])) for k in keys}
    ikeys = [k for k in image_rows[0] if k != "fold"]
    imean = {k: float(np.nanmean([r[k] for r in image_rows])) for k in ikeys}
    print("mean: " + ", ".join(f"{k}={v:.3f}" for k, v in mean.items()))
    print("image label mean over folds: " + ", ".join(f"{k}={v:.3f}" for k, v in imean.items()))
    print("fused confusion (rows truth normal/benign/malignant):", pooled["fused_confusion"])
    summary = {"run": str(run), "folds": folds, "evidence": list(use), "fp_rate": FP_RATE, "per_fold": per_fold, "mean": mean,
               "image_per_fold": image_rows, "image_mean": imean, "image_pooled": pooled,
               "classifier_run": args.classifier_run,
               "shipped": {"score_calibration": list(coef_all), "score_threshold": thr_all, "tta_flip": args.tta_flip,
                           "fusion": {"weights": fusion_all.weights, "bias": fusion_all.bias}},
               "n_candidates": int(len(everything.is_true)), "seconds": round(time.time() - t0, 1)}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1, default=float), encoding="utf-8")
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
