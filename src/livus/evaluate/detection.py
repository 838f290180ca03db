"""Detection metrics (pure functions; ORIGINAL image pixels): matching detections to lesions,
FROC, sensitivity by lesion size and long-axis error.

A detection hits a lesion when its centre lies inside the lesion polygon or its box has IoU ≥
0.3 with the lesion's box. Matching is greedy by descending score; each lesion is hit at most
once, and a second detection on an already-hit lesion counts as a false positive (strict).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livus.io.dataset import ImageRecord
from livus.types import FrameResult, box_iou

FP_RATES = (0.1, 0.25, 0.5, 1.0)
SIZE_BINS = (("lt60", 0.0, 60.0), ("60to150", 60.0, 150.0), ("gt150", 150.0, float("inf")))
IOU_HIT = 0.3


@dataclass
class PredLesion:
    """A reported lesion: centre, box ``[x0, y0, x1, y1]``, score, long axis (pixels)."""

    center_px: tuple[float, float]
    bbox_px: list[float]
    score: float
    long_axis_px: float = 0.0


@dataclass
class TrueLesion:
    """An annotated lesion: outline polygon (pixels)."""

    polygon_px: list[list[float]]

    @property
    def bbox_px(self) -> list[float]:
        p = np.asarray(self.polygon_px, dtype=np.float64)
        return [float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())]

    @property
    def largest_extent_px(self) -> float:
        return largest_extent(self.polygon_px)


def true_lesions(rec: ImageRecord) -> list[TrueLesion]:
    """The annotated lesions of a dataset record that have an outline (≥ 3 points)."""
    return [TrueLesion(les.polygon_px) for les in rec.lesions if len(les.polygon_px) >= 3]


def pred_lesions(result: FrameResult) -> list[PredLesion]:
    """The reported lesions of an analysis result, in its (score) order."""
    return [PredLesion(tuple(l.center_px), l.bbox_px, float(l.score), float(l.long_axis_px)) for l in result.lesions]


@dataclass
class ImageMatch:
    """Matching of one image: per prediction (score order) the hit lesion index or -1."""

    scores: np.ndarray  # (P,) descending
    hit: np.ndarray  # (P,) lesion index or -1
    long_axis_px: np.ndarray  # (P,) predicted long axes
    n_lesions: int


def largest_extent(polygon_px: list[list[float]]) -> float:
    """Largest distance between two points of a polygon (its caliper long axis), pixels."""
    p = np.asarray(polygon_px, dtype=np.float64).reshape(-1, 2)
    if len(p) < 2:
        return 0.0
    if len(p) > 3:
        p = cv2.convexHull(p.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    d = p[:, None, :] - p[None, :, :]
    return float(np.sqrt((d**2).sum(-1)).max())


def is_hit(pred: PredLesion, lesion: TrueLesion, iou_threshold: float = IOU_HIT) -> bool:
    """Centre inside the lesion polygon, or box IoU ≥ ``iou_threshold``."""
    poly = np.asarray(lesion.polygon_px, dtype=np.float32).reshape(-1, 1, 2)
    if len(poly) >= 3 and cv2.pointPolygonTest(poly, (float(pred.center_px[0]), float(pred.center_px[1])), False) >= 0:
        return True
    return box_iou(pred.bbox_px, lesion.bbox_px) >= iou_threshold


def match_image(preds: list[PredLesion], lesions: list[TrueLesion], iou_threshold: float = IOU_HIT) -> ImageMatch:
    """Greedy matching by descending score (see module docstring)."""
    order = sorted(range(len(preds)), key=lambda i: -preds[i].score)
    taken: set[int] = set()
    hit = []
    for i in order:
        h = -1
        for j, les in enumerate(lesions):
            if j not in taken and is_hit(preds[i], les, iou_threshold):
                h = j
                taken.add(j)
                break
        hit.append(h)
    return ImageMatch(
        scores=np.array([preds[i].score for i in order], dtype=np.float64),
        hit=np.array(hit, dtype=np.int64),
        long_axis_px=np.array([preds[i].long_axis_px for i in order], dtype=np.float64),
        n_lesions=len(lesions),
    )


def froc_curve(matches: list[ImageMatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FROC points over all score thresholds: ``(fp_per_image, sensitivity, threshold)``,
    thresholds descending (each point = keep detections with score ≥ threshold)."""
    n_images = len(matches)
    n_lesions = sum(m.n_lesions for m in matches)
    if n_images == 0:
        return np.zeros(1), np.zeros(1), np.array([np.inf])
    scores = np.concatenate([m.scores for m in matches]) if matches else np.zeros(0)
    tp = np.concatenate([m.hit >= 0 for m in matches]) if matches else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    scores, tp = scores[order], tp[order]
    cum_tp = np.cumsum(tp)
    cum_fp = np.cumsum(~tp)
    # one point per distinct threshold: the last detection with that score
    last = np.r_[scores[1:] != scores[:-1], True] if len(scores) else np.zeros(0, bool)
    fp = np.r_[0.0, cum_fp[last] / n_images]
    sens = np.r_[0.0, cum_tp[last] / max(n_lesions, 1)]
    thr = np.r_[np.inf, scores[last]]
    return fp, sens, thr


def sensitivity_at_fp(matches: list[ImageMatch], fp_rates: tuple[float, ...] = FP_RATES) -> dict[float, float]:
    """FROC sensitivity at each FP/image rate: best sensitivity with FP/image ≤ rate."""
    fp, sens, _ = froc_curve(matches)
    return {r: float(sens[fp <= r + 1e-12].max()) for r in fp_rates}


def threshold_at_fp(matches: list[ImageMatch], fp_rate: float) -> float:
    """Lowest score threshold whose FP/image is ≤ ``fp_rate`` (the operating point); 1.0 when
    even the best detection exceeds it."""
    fp, _, thr = froc_curve(matches)
    ok = np.nonzero(fp <= fp_rate + 1e-12)[0]
    return float(min(thr[ok[-1]], 1.0))


def sensitivity_by_size(
    matches: list[ImageMatch], lesions_per_image: list[list[TrueLesion]], threshold: float = 0.0
) -> dict[str, tuple[float, int]]:
    """Share of lesions hit by a detection with score ≥ ``threshold``, per size bin of the
    lesion's largest extent (pixels): ``{bin: (sensitivity or NaN, n_lesions)}``."""
    hit_flags: dict[str, list[bool]] = {name: [] for name, _, _ in SIZE_BINS}
    for m, lesions in zip(matches, lesions_per_image):
        hit_set = set(m.hit[(m.hit >= 0) & (m.scores >= threshold)].tolist())
        for j, les in enumerate(lesions):
            ext = les.largest_extent_px
            for name, lo, hi in SIZE_BINS:
                if lo <= ext < hi:
                    hit_flags[name].append(j in hit_set)
    return {k: (float(np.mean(v)) if v else float("nan"), len(v)) for k, v in hit_flags.items()}


def long_axis_errors(matches: list[ImageMatch], lesions_per_image: list[list[TrueLesion]], threshold: float = 0.0) -> np.ndarray:
    """|predicted long axis − lesion largest extent| (pixels) for each hit above ``threshold``."""
    errs = []
    for m, lesions in zip(matches, lesions_per_image):
        for h, s, la in zip(m.hit, m.scores, m.long_axis_px):
            if h >= 0 and s >= threshold:
                errs.append(abs(la - lesions[int(h)].largest_extent_px))
    return np.array(errs, dtype=np.float64)
