"""Would a second look at each detection candidate's crop, by the lesion classifier, lower the
false positives? A cross-fitted probe on AUL (issue 21).

Every candidate the five fold detectors of a CV run propose on their held-out images (raw scores,
above ``candidate_threshold``) is classified by the same fold's classifier (``--classifier-run``
with ``fold<k>.pt``, trained on the same folds). The score calibration is then refitted (logistic
regression, as ``livus.train.calibration``) on three inputs: the detector's own evidence alone;
plus the classifier's malignancy; plus all its outputs (malignancy and imaging features, as
logits). For fold k the regression and the report threshold (0.25 FP/image) are fitted on the
other folds. Prints per input the mean over folds of the sensitivity and false positives per
image at the threshold, and the share of normal images with a reported lesion, then each
classifier output's AUC for "true lesion" over all candidates.

Usage: python benchmarks/crop_check_aul.py --data DATASET --cv runs/cv_hn --classifier-run runs/clf_pre
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from livus.evaluate.detection import match_image, pred_lesions, true_lesions
from livus.models.classifier import classify_lesions, load_classifier
from livus.models.decode import EVIDENCE_NAMES
from livus.models.detector import load_detector
from livus.train.calibration import predict_results
from livus.train.datasets import frame_for_record
from livus.train.detector import load_cv_run

FP_RATE = 0.25


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def candidates(data: Path, run: Path, classifier_run: Path) -> tuple[np.ndarray, list[str], list, list[np.ndarray]]:
    """Rows ``(fold, image index, is true, *evidence, malignancy, *features)``, the feature names,
    the records and the folds' held-out image indices."""
    cv = load_cv_run(run, data)
    rows, names = [], None
    for f in cv.folds:
        model = load_detector(cv.fold_model_path(f))
        model.cfg = copy.deepcopy(model.cfg)
        model.cfg.score_calibration = ()
        clf = load_classifier(classifier_run / f"fold{f}.pt")
        cache_f, recs = cv.validation(f)
        results, dets, _ = predict_results(model, cache_f, recs, score_threshold=model.cfg.candidate_threshold)
        for i, rec, res, d in zip(cv.splits[f][1], recs, results, dets):
            if not res.lesions:
                continue
            hits = match_image(pred_lesions(res), true_lesions(rec)).hit  # same order as the detections
            for det, hit, out in zip(d, hits, classify_lesions(clf, frame_for_record(cv.dataset, rec).pixels, res.lesions)):
                names = names or sorted(out["features"])
                rows.append([f, int(i), int(hit >= 0), *det.evidence, out["malignancy"], *[out["features"][n] for n in names]])
    return np.asarray(rows, float), ["malignancy", *(names or [])], cv.records, [cv.splits[f][1] for f in cv.folds]


def threshold_at_fp(scores: np.ndarray, is_true: np.ndarray, n_images: int, fp_rate: float) -> float:
    """Lowest score whose candidates above it have at most ``fp_rate`` false positives per image."""
    order = np.argsort(-scores)
    ok = np.nonzero(np.cumsum(1 - is_true[order]) / n_images <= fp_rate)[0]
    return float(scores[order][ok[-1]]) if len(ok) else 1.0


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cv", required=True)
    ap.add_argument("--classifier-run", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows, out_names, records, held_out = candidates(Path(args.data), Path(args.cv), Path(args.classifier_run))
    fold, image, is_true = rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2].astype(int)
    n_ev = len(EVIDENCE_NAMES)
    evidence, outputs = rows[:, 3 : 3 + n_ev], logit(rows[:, 3 + n_ev :])
    n_lesions = np.array([len(true_lesions(r)) for r in records])
    normal = np.array([r.image_class == "normal" for r in records])
    inputs = {"detector evidence": evidence, "+ malignancy": np.c_[evidence, outputs[:, :1]], "+ all classifier outputs": np.c_[evidence, outputs]}
    print(f"{len(rows)} candidates, {int(is_true.sum())} true, {len(held_out)} folds")
    for name, x in inputs.items():
        figs = []
        for f, te_images in enumerate(held_out):
            train, test = fold != f, fold == f
            score = LogisticRegression(C=1.0, max_iter=2000).fit(x[train], is_true[train]).predict_proba(x)[:, 1]
            n_train_images = sum(len(v) for g, v in enumerate(held_out) if g != f)
            thr = threshold_at_fp(score[train], is_true[train], n_train_images, FP_RATE)
            kept = test & (score >= thr)
            shown = set(image[kept].tolist())
            figs.append((is_true[kept].sum() / n_lesions[te_images].sum(), (1 - is_true[kept]).sum() / len(te_images),
                         np.mean([i in shown for i in te_images if normal[i]])))
        sens, fp, nwl = np.mean(figs, axis=0)
        print(f"{name:26s} sensitivity {sens:.3f}  FP/image {fp:.3f}  normal images with a lesion {nwl:.3f}")
    for k, n in enumerate(out_names):
        print(f"AUC {n}: {roc_auc_score(is_true, rows[:, 3 + n_ev + k]):.3f}")


if __name__ == "__main__":
    main()
