"""Detection-score calibration: monotone, calibrated on data it fits, thresholds at a measured FP rate."""

from __future__ import annotations

import numpy as np

from livus.models.decode import EVIDENCE_NAMES, calibrate_score
from livus.train.calibration import HeldOutPredictions, calibrated_scores, candidate_ece, fit_score_calibration, image_matches, report_threshold


def _synthetic(n: int = 3000, seed: int = 0) -> HeldOutPredictions:
    rng = np.random.default_rng(seed)
    is_true = rng.random(n) < 0.3
    peak = rng.normal(np.where(is_true, 4.0, 1.0), 1.5)
    heat = rng.normal(np.where(is_true, 1.0, -1.0), 1.0)
    image = rng.normal(np.where(is_true, 1.0, 0.0), 1.0)
    area = rng.normal(5.0, 1.0, n)
    ev = np.stack([peak, heat, image, area], 1)
    idx = rng.integers(0, 500, n)
    n_les = np.bincount(idx[is_true], minlength=500)
    return HeldOutPredictions(ev, is_true, idx, np.full((500, 3), np.nan), ["benign"] * 500, n_les)


def test_calibration_is_monotone_in_the_mask_evidence():
    pred = _synthetic()
    coef = fit_score_calibration(pred.evidence, pred.is_true)
    assert len(coef) == len(EVIDENCE_NAMES) + 1
    assert coef[1] > 0 and coef[2] > 0
    base = np.array([0.0, 0.0, 0.0, 5.0])
    scores = [calibrate_score(base + [p, 0, 0, 0], coef) for p in np.linspace(-5, 10, 31)]
    assert np.all(np.diff(scores) > 0)
    assert 0.0 < min(scores) and max(scores) < 1.0


def test_calibrated_scores_spread_and_are_calibrated_out_of_sample():
    coef = fit_score_calibration(_synthetic(seed=0).evidence, _synthetic(seed=0).is_true)
    test = _synthetic(seed=1)
    s = calibrated_scores(test, coef)
    assert np.percentile(s, 90) - np.percentile(s, 10) > 0.5
    assert candidate_ece(test, coef) < 0.05


def test_report_threshold_meets_the_fp_rate():
    pred = _synthetic()
    coef = fit_score_calibration(pred.evidence, pred.is_true)
    thr = report_threshold(pred, coef, 0.25)
    s = calibrated_scores(pred, coef)
    fp_per_image = np.sum((s >= thr) & ~pred.is_true) / pred.n_images
    assert fp_per_image <= 0.25 + 1e-9
    lower = report_threshold(pred, coef, 1.0)
    assert lower <= thr
    assert len(image_matches(pred, s)) == pred.n_images


def test_left_out_evidence_gets_zero_weight():
    pred = _synthetic()
    coef = fit_score_calibration(pred.evidence, pred.is_true, use=EVIDENCE_NAMES[:3])
    assert coef[4] == 0.0 and coef[1] > 0


def test_cross_fitted_operating_point_ignores_the_fold_it_describes():
    from livus.train.calibration import cross_fitted_operating_point

    preds = {0: _synthetic(seed=0), 1: _synthetic(seed=1), 2: _synthetic(seed=2)}
    coef, thr = cross_fitted_operating_point(preds, 0)
    # the same whatever fold 0 holds: it takes no part in its own fit
    swapped = {**preds, 0: _synthetic(seed=9)}
    assert cross_fitted_operating_point(swapped, 0) == (coef, thr)
    # and it differs from a fit that includes fold 0
    assert cross_fitted_operating_point(preds, 1) != (coef, thr)
    fp_rate_coef, strict_thr = cross_fitted_operating_point(preds, 0, fp_rate=0.05)
    assert fp_rate_coef == coef and strict_thr >= thr


def test_concatenated_predictions_keep_per_image_liver_dice():
    from livus.train.calibration import concat_predictions

    a, b = _synthetic(seed=0), _synthetic(seed=1)
    a.liver_dice = np.full(a.n_images, 0.9)
    b.liver_dice = np.full(b.n_images, np.nan)
    both = concat_predictions([a, b])
    assert both.n_images == len(both.liver_dice) == 1000
    assert np.all(both.liver_dice[:500] == 0.9) and np.isnan(both.liver_dice[500:]).all()
    assert both.image_index.max() >= 500  # second part renumbered
