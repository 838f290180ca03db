"""Is a detector's change on AUL CV a real difference or fold noise? Paired comparison of CV runs.

Every run must be a CV run of ``livus train detector`` over the same dataset, seed and fold count
(e.g. a schedule and the schedule it was warm-started from, or a weight average made with
``livus train average``), so each held-out image is seen by one fold model of every run. For each
run and fold the score calibration and report threshold (0.25 false positives per image) are
cross-fitted on the other folds, as in ``benchmarks/pretrained_cv_report.py``. Then, against
``--base``:
- normal images with a reported lesion: the images only one of the two flags, and the exact
  McNemar p-value (two-sided binomial test on those discordant images);
- lesion sensitivity at the report threshold, false positives per image, candidate ECE (pooled
  over folds, not the mean of per-fold ECEs that pretrained_cv_report prints) and liver Dice:
  the difference and its 95 % interval from a paired bootstrap over images (the same resampled
  images for both runs; calibrations and thresholds kept fixed).
The fused image label is not compared (it needs the classifier's fold models).
Runs that trained one fold only (``train.folds_to_run: [0]``, a quick probe) are compared on that
fold; with no other fold to cross-fit on, the calibration and threshold are fitted on the fold's
own held-out candidates (in-sample, the same for every run; the JSON says so).

Usage: python benchmarks/paired_cv_comparison.py --data DATASET --base runs/cv_s2
           --cv runs/cv_hn4 [runs/cv_other ...] [--bootstrap 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest

from livus.evaluate.classification import expected_calibration_error
from livus.models.detector import load_detector
from livus.train.calibration import (HeldOutPredictions, calibrated_scores, concat_predictions,
                                     cross_fitted_operating_point, fit_score_calibration, held_out_predictions,
                                     report_threshold)
from livus.train.detector import load_cv_run

FP_RATE = 0.25


@dataclass
class PooledRun:
    """One run's held-out candidates over every fold, scored with their fold's cross-fitted
    calibration, and per image (pooled order) whether any candidate reaches its fold's threshold."""

    pred: HeldOutPredictions
    scores: np.ndarray  # calibrated score per candidate
    reported: np.ndarray  # candidate at or above its fold's report threshold
    stems: list[str]
    cross_fitted: bool = True  # False: one fold only, operating point fitted on it (in-sample)


def operating_point(preds: dict[int, HeldOutPredictions], fold: int) -> tuple[tuple[float, ...], float]:
    """Fold ``fold``'s calibration and report threshold: cross-fitted on the other folds, or, when
    the run has no other fold, fitted on this fold's own held-out candidates."""
    if len(preds) > 1:
        return cross_fitted_operating_point(preds, fold, FP_RATE)
    coef = fit_score_calibration(preds[fold].evidence, preds[fold].is_true)
    return coef, report_threshold(preds[fold], coef, FP_RATE)


def pooled_run(run: Path, data: Path) -> PooledRun:
    cv = load_cv_run(run, data)
    if not cv.folds:
        raise ValueError(f"{run}: no fold<k>/detector.pt")
    preds = {f: held_out_predictions(load_detector(cv.fold_model_path(f)), *cv.validation(f)) for f in cv.folds}
    scores, reported = [], []
    for f in cv.folds:
        coef, thr = operating_point(preds, f)
        s = calibrated_scores(preds[f], coef)
        scores.append(s)
        reported.append(s >= thr)
    pred = concat_predictions([preds[f] for f in cv.folds])
    return PooledRun(pred, np.concatenate(scores), np.concatenate(reported), pred.stems, len(cv.folds) > 1)


def per_image(r: PooledRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: lesions found at the report threshold, false positives reported, any reported."""
    n = r.pred.n_images
    hits = np.bincount(r.pred.image_index, weights=(r.reported & r.pred.is_true).astype(float), minlength=n)
    fps = np.bincount(r.pred.image_index, weights=(r.reported & ~r.pred.is_true).astype(float), minlength=n)
    return hits, fps, (hits + fps) > 0


def figures(r: PooledRun, images: np.ndarray) -> dict[str, float]:
    """Sensitivity at threshold, FP per image, candidate ECE (pooled over folds) and mean liver
    Dice on the (resampled) ``images``."""
    hits, fps, _ = per_image(r)
    counts = np.bincount(images, minlength=r.pred.n_images)
    cand_w = counts[r.pred.image_index]
    sel = np.repeat(np.arange(len(cand_w)), cand_w)
    n_les = float(np.sum(r.pred.n_lesions * counts))
    outlined = np.isfinite(r.pred.liver_dice)
    return {"sensitivity_at_threshold": float(np.sum(hits * counts)) / n_les if n_les else float("nan"),
            "fp_per_image": float(np.sum(fps * counts)) / len(images),
            "candidate_ece": expected_calibration_error(r.pred.is_true[sel].astype(int), r.scores[sel]),
            "liver_dice": float(np.average(r.pred.liver_dice[outlined], weights=counts[outlined]))
            if counts[outlined].sum() else float("nan")}


def compare(base: PooledRun, other: PooledRun, n_boot: int, rng: np.random.Generator) -> dict:
    if base.stems != other.stems:
        raise ValueError("the runs did not hold out the same images in the same folds (data, seed or fold count differ)")
    normal = np.array([c == "normal" for c in base.pred.classes])
    a, b = per_image(base)[2][normal], per_image(other)[2][normal]
    only_other, only_base = int((b & ~a).sum()), int((a & ~b).sum())
    p = binomtest(only_other, only_other + only_base).pvalue if only_other + only_base else 1.0
    n = base.pred.n_images
    everything = np.arange(n)
    point = {k: figures(other, everything)[k] - v for k, v in figures(base, everything).items()}
    boot = {k: [] for k in point}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        fb, fo = figures(base, idx), figures(other, idx)
        for k in boot:
            boot[k].append(fo[k] - fb[k])
    return {"normal_with_lesion": {"base": int(a.sum()), "run": int(b.sum()), "of": int(normal.sum()),
                                   "only_run": only_other, "only_base": only_base, "mcnemar_p": float(p)},
            "differences": {k: {"run_minus_base": point[k], "ci95": [float(np.percentile(boot[k], 2.5)),
                                                                     float(np.percentile(boot[k], 97.5))]}
                            for k in point}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--base", required=True, help="the CV run to compare against")
    ap.add_argument("--cv", nargs="+", required=True, help="CV runs compared with --base")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    base = pooled_run(Path(args.base), Path(args.data))
    out = {"benchmark": "paired_cv_comparison", "base": args.base, "fp_rate": FP_RATE, "bootstrap": args.bootstrap,
           "operating_point": "cross-fitted" if base.cross_fitted else "fitted on the one held-out fold (in-sample)",
           "images": base.pred.n_images, "base_figures": figures(base, np.arange(base.pred.n_images)), "runs": {}}
    for run in args.cv:
        other = pooled_run(Path(run), Path(args.data))
        res = compare(base, other, args.bootstrap, rng)
        res["figures"] = figures(other, np.arange(other.pred.n_images))
        out["runs"][run] = res
        nw = res["normal_with_lesion"]
        print(f"{run} vs {args.base}: normal images with a lesion {nw['run']} vs {nw['base']} of {nw['of']} "
              f"(only {run}: {nw['only_run']}, only base: {nw['only_base']}, exact McNemar p = {nw['mcnemar_p']:.2f})")
        for k, d in res["differences"].items():
            print(f"    {k}: {res['figures'][k]:.3f} vs {out['base_figures'][k]:.3f}, difference {d['run_minus_base']:+.3f} "
                  f"(95 % bootstrap interval {d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f})", flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
