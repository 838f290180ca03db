"""Score calibration on held-out folds: detection candidates and the image-level label.

Detection: every mask component the detector proposes on a held-out image is a *candidate* with
its evidence (``livus.models.decode.EVIDENCE_NAMES``) and a label (does it hit an annotated
lesion, by the matching rule of ``livus.evaluate.detection``). A logistic regression on the
evidence (Platt scaling extended to the four evidence values; scikit-learn) turns them into a
probability that the candidate is a true lesion; its coefficients travel in
``DetectorConfig.score_calibration`` and the report threshold is chosen on the calibrated scale
at a measured false-positive rate per image.

Cross-fitting: the figures of fold ``k`` use a calibration and a threshold fitted on the other
folds only, so no figure is computed with parameters chosen on the images it describes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from livus.evaluate.classification import expected_calibration_error
from livus.evaluate.detection import ImageMatch, match_image, pred_lesions, threshold_at_fp, true_lesions
from livus.evaluate.run import Metrics, compute_metrics, liver_dice
from livus.io.dataset import ImageRecord
from livus.models.decode import EVIDENCE_NAMES, calibrate_score, decode_detections, liver_polygon
from livus.models.detector import LesionDetector
from livus.train.datasets import ModelSpaceCache
from livus.train.trainer import predict
from livus.types import FrameResult
from livus.vocab import IMAGE_CLASSES


@dataclass
class HeldOutPredictions:
    """A model's raw predictions on held-out images (no calibration applied).

    ``evidence`` ``(M, 4)``, ``is_true`` ``(M,)`` and ``image_index`` ``(M,)`` per candidate;
    ``image_probs`` ``(N, 3)`` softmax of the image-level head (NaN without one); ``classes``
    the images' true classes; ``n_lesions`` annotated lesions per image; ``liver_dice`` ``(N,)``
    Dice of the predicted liver outline (NaN where the image has no liver annotation)."""

    evidence: np.ndarray
    is_true: np.ndarray
    image_index: np.ndarray
    image_probs: np.ndarray
    classes: list[str]
    n_lesions: np.ndarray
    stems: list[str] = field(default_factory=list)
    liver_dice: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_images(self) -> int:
        return len(self.classes)


def concat_predictions(parts: list[HeldOutPredictions]) -> HeldOutPredictions:
    """Join the predictions of several folds (image indices renumbered)."""
    offsets = np.cumsum([0] + [p.n_images for p in parts[:-1]])
    return HeldOutPredictions(
        np.concatenate([p.evidence for p in parts]), np.concatenate([p.is_true for p in parts]),
        np.concatenate([p.image_index + o for p, o in zip(parts, offsets)]), np.concatenate([p.image_probs for p in parts]),
        [c for p in parts for c in p.classes], np.concatenate([p.n_lesions for p in parts]), [s for p in parts for s in p.stems],
        np.concatenate([p.liver_dice for p in parts]),
    )


def other_folds(preds: dict[int, HeldOutPredictions], fold: int) -> HeldOutPredictions:
    """The held-out predictions of every fold but ``fold`` (what fold ``fold``'s cross-fitted
    calibration and threshold are fitted on); ``fold``'s own when it is the only one."""
    others = [p for g, p in preds.items() if g != fold]
    return concat_predictions(others) if others else preds[fold]


def cross_fitted_operating_point(preds: dict[int, HeldOutPredictions], fold: int, fp_rate: float = 0.25,
                                 use: tuple[str, ...] | None = None) -> tuple[tuple[float, ...], float]:
    """Fold ``fold``'s score calibration and report threshold (at ``fp_rate`` false positives
    per image), both fitted on the other folds' held-out candidates only."""
    others = other_folds(preds, fold)
    coefficients = fit_score_calibration(others.evidence, others.is_true, use=use)
    return coefficients, report_threshold(others, coefficients, fp_rate)


def predict_results(model: LesionDetector, cache: ModelSpaceCache, records: list[ImageRecord], score_threshold: float | None = None,
                    batch_size: int = 16) -> tuple[list[FrameResult], list[list], np.ndarray]:
    """Decode ``model`` on a cache: ``(results in ORIGINAL pixels, detections in model pixels,
    image-head probabilities (N, 3) or NaN)``."""
    from livus.train.detector import detections_to_result

    cfg = model.cfg
    results, dets_all, probs = [], [], []
    k = 0
    for out in predict(model, cache.images, batch_size):
        valid = torch.from_numpy(cache.valid_masks[k : k + out["heatmap"].shape[0]])
        dets = decode_detections(out, cfg, valid_mask=valid, score_threshold=score_threshold)
        for b, d in enumerate(dets):
            results.append(detections_to_result(d, liver_polygon(out, b, cfg.mask_threshold), cache.letterboxes[k + b], records[k + b]))
            dets_all.append(d)
        if "image_logits" in out:
            probs.append(torch.softmax(out["image_logits"].float(), 1).numpy())
        else:
            probs.append(np.full((len(dets), len(IMAGE_CLASSES)), np.nan))
        k += len(dets)
    return results, dets_all, np.concatenate(probs) if probs else np.zeros((0, 3))


def held_out_predictions(model: LesionDetector, cache: ModelSpaceCache, records: list[ImageRecord]) -> HeldOutPredictions:
    """Every candidate (raw scores, no calibration) with its evidence and hit label."""
    raw = copy.deepcopy(model.cfg)
    raw.score_calibration = ()
    saved, model.cfg = model.cfg, raw
    try:
        results, dets, probs = predict_results(model, cache, records, score_threshold=raw.candidate_threshold)
    finally:
        model.cfg = saved
    ev, hit, idx, n_les, liver = [], [], [], [], []
    for i, (rec, res, d) in enumerate(zip(records, results, dets)):
        truths = true_lesions(rec)
        n_les.append(len(truths))
        dice = liver_dice(rec, res)
        liver.append(math.nan if dice is None else dice)
        m = match_image(pred_lesions(res), truths)  # detections are sorted by score: same order
        for det, h in zip(d, m.hit):
            ev.append(det.evidence)
            hit.append(h >= 0)
            idx.append(i)
    return HeldOutPredictions(np.asarray(ev, np.float64).reshape(-1, 4), np.asarray(hit, bool), np.asarray(idx, np.int64), probs,
                              [r.image_class or "unknown" for r in records], np.asarray(n_les, np.int64), [r.file_name for r in records],
                              np.asarray(liver, np.float64))


def fit_score_calibration(evidence: np.ndarray, is_true: np.ndarray, c: float = 1.0,
                          use: tuple[str, ...] | None = None) -> tuple[float, ...]:
    """Logistic-regression coefficients ``(intercept, w_1..w_4)`` of :func:`calibrate_score`.
    ``use``: the evidence names the regression may weigh (default all of ``EVIDENCE_NAMES``);
    the others get weight 0 — e.g. leaving out ``log_area_px`` so that small candidates are not
    scored down for being small (what a screening for sub-centimetre nodules needs)."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(is_true)) < 2:
        raise ValueError("score calibration needs both true and false candidates")
    cols = [i for i, n in enumerate(EVIDENCE_NAMES) if use is None or n in use]
    lr = LogisticRegression(C=c, max_iter=1000).fit(np.asarray(evidence, np.float64)[:, cols], np.asarray(is_true, int))
    weights = np.zeros(len(EVIDENCE_NAMES))
    weights[cols] = lr.coef_[0]
    return (float(lr.intercept_[0]), *[float(w) for w in weights])


def calibrated_scores(pred: HeldOutPredictions, coefficients: tuple[float, ...]) -> np.ndarray:
    return np.array([calibrate_score(e, coefficients) for e in pred.evidence], np.float64)


def image_matches(pred: HeldOutPredictions, scores: np.ndarray) -> list[ImageMatch]:
    """Per image, its candidates (descending ``scores``) and their hit labels, for the FROC."""
    out = []
    for i in range(pred.n_images):
        sel = np.nonzero(pred.image_index == i)[0]
        order = sel[np.argsort(-scores[sel], kind="stable")]
        out.append(ImageMatch(scores[order], np.where(pred.is_true[order], 0, -1), np.zeros(len(order)), int(pred.n_lesions[i])))
    return out


def report_threshold(pred: HeldOutPredictions, coefficients: tuple[float, ...], fp_rate: float = 0.25) -> float:
    """Lowest calibrated score with at most ``fp_rate`` false positives per image on ``pred``."""
    return threshold_at_fp(image_matches(pred, calibrated_scores(pred, coefficients)), fp_rate)


def candidate_ece(pred: HeldOutPredictions, coefficients: tuple[float, ...]) -> float:
    """Expected calibration error of the calibrated candidate scores (10 bins)."""
    if not len(pred.is_true):
        return math.nan
    return expected_calibration_error(pred.is_true.astype(int), calibrated_scores(pred, coefficients))


def normal_images_with_lesion(results: list[FrameResult], records: list[ImageRecord], threshold: float) -> float:
    """Share of the ``normal`` images with at least one lesion reported at ``threshold``."""
    flags = [any(l.score >= threshold for l in res.lesions) for res, rec in zip(results, records) if rec.image_class == "normal"]
    return float(np.mean(flags)) if flags else math.nan


def evaluate_calibrated(model: LesionDetector, cache: ModelSpaceCache, records: list[ImageRecord],
                        coefficients: tuple[float, ...], threshold: float) -> tuple[Metrics, float, list[FrameResult], np.ndarray]:
    """Metrics of ``model`` with a given calibration and report threshold: ``(metrics, share of
    normal images with a reported lesion, results, image-head probabilities)``."""
    cfg = copy.deepcopy(model.cfg)
    cfg.score_calibration = tuple(coefficients)
    cfg.score_threshold = float(threshold)
    saved, model.cfg = model.cfg, cfg
    try:
        results, _, probs = predict_results(model, cache, records, score_threshold=cfg.candidate_threshold)
    finally:
        model.cfg = saved
    return compute_metrics(records, results, report_threshold=threshold), normal_images_with_lesion(results, records, threshold), results, probs
