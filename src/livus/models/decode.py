"""Decoding detector outputs into lesions (model-input pixels): 3×3 peak picking on the centre
heatmap, oriented ellipses from the regression maps, Gaussian soft-NMS, and lesion/liver
outlines from the segmentation masks.

Coordinates follow ``livus.types`` (x right, y down, pixel centres at integers, angles in
degrees from +x towards +y in [0, 180)) in MODEL-INPUT pixels; the inference pipeline maps them
back to original pixels with the letterbox. A stride-4 cell ``j`` covers model pixels
``4j … 4j+3``, so a cell coordinate ``u`` maps to model pixel ``(u + 0.5) * 4 - 0.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from livus.config import DetectorConfig
from livus.types import ellipse_bbox

STRIDE = 4


@dataclass
class Detection:
    """One detected lesion in model-input pixels (axes are full diameters)."""

    center_px: tuple[float, float]
    long_axis_px: float
    short_axis_px: float
    angle_deg: float
    score: float
    polygon_px: list[list[float]] = field(default_factory=list)
    # mask decoding: the candidate's evidence (see EVIDENCE_NAMES), input of the score calibration
    evidence: tuple[float, ...] = ()

    @property
    def bbox_px(self) -> list[float]:
        """Axis-aligned box ``[x0, y0, x1, y1]`` of the ellipse (model pixels)."""
        return ellipse_bbox(self.center_px, self.long_axis_px, self.short_axis_px, self.angle_deg)


# ---- score calibration ----------------------------------------------------------------------

EVIDENCE_NAMES = ("mask_peak_logit", "heatmap_peak_logit", "image_lesion_logit", "log_area_px")


def _logit(p: float | np.ndarray, eps: float = 1e-4) -> float | np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def calibrate_score(evidence: tuple[float, ...] | np.ndarray, coefficients: tuple[float, ...]) -> float:
    """Calibrated probability that a candidate is a true lesion: logistic regression
    ``sigmoid(c0 + Σ c_i · evidence_i)`` over :data:`EVIDENCE_NAMES` (coefficients fitted on
    held-out folds' candidates by ``livus.train.calibration``)."""
    e = np.asarray(evidence, np.float64)
    c = np.asarray(coefficients, np.float64)
    if len(c) != len(e) + 1:
        raise ValueError(f"score calibration needs {len(e) + 1} coefficients, got {len(c)}")
    return float(1.0 / (1.0 + np.exp(-(c[0] + float(c[1:] @ e)))))


def image_lesion_probability(outputs: dict[str, torch.Tensor], b: int) -> float | None:
    """``1 − P(normal)`` of batch item ``b`` from the image-level head (``None`` without one)."""
    if "image_logits" not in outputs:
        return None
    return float(1.0 - torch.softmax(outputs["image_logits"][b].detach().float(), 0)[0])


# ---- pure geometry --------------------------------------------------------------------------


def cell_to_pixel(u: float | np.ndarray) -> float | np.ndarray:
    """Stride-4 cell coordinate → model pixel coordinate."""
    return (u + 0.5) * STRIDE - 0.5


def pixel_to_cell(x: float | np.ndarray) -> float | np.ndarray:
    """Model pixel coordinate → stride-4 cell coordinate (inverse of :func:`cell_to_pixel`)."""
    return (x + 0.5) / STRIDE - 0.5


def angle_to_orient(angle_deg: float) -> tuple[float, float]:
    """Long-axis angle (degrees) → ``(cos 2θ, sin 2θ)`` (θ and θ+180° give the same code)."""
    a = math.radians(2.0 * angle_deg)
    return math.cos(a), math.sin(a)


def orient_to_angle(cos2: float, sin2: float) -> float:
    """``(cos 2θ, sin 2θ)`` (need not be unit length) → angle in degrees in [0, 180)."""
    return (math.degrees(math.atan2(sin2, cos2)) / 2.0) % 180.0


def ellipse_polygon(
    center_px: tuple[float, float], long_axis_px: float, short_axis_px: float, angle_deg: float, n: int = 32
) -> list[list[float]]:
    """``n`` points on an oriented ellipse (axes are full diameters)."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    a = math.radians(angle_deg)
    x = long_axis_px / 2 * np.cos(t)
    y = short_axis_px / 2 * np.sin(t)
    px = center_px[0] + x * math.cos(a) - y * math.sin(a)
    py = center_px[1] + x * math.sin(a) + y * math.cos(a)
    return np.stack([px, py], 1).tolist()


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes ``(N,4)`` × ``(M,4)`` in ``[x0, y0, x1, y1]`` (continuous coords)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def soft_nms(boxes: np.ndarray, scores: np.ndarray, sigma: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS (Bodla et al. 2017): repeatedly keep the best box and decay the
    others' scores by ``exp(-IoU² / sigma)``. Returns ``(order, new_scores)``: indices into the
    input in the order kept, and their decayed scores (non-increasing)."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    remaining = list(range(len(scores)))
    order: list[int] = []
    out_scores: list[float] = []
    while remaining:
        best = max(remaining, key=lambda i: scores[i])
        order.append(best)
        out_scores.append(float(scores[best]))
        remaining.remove(best)
        if remaining:
            rest = np.array(remaining)
            iou = box_iou(boxes[best : best + 1], boxes[rest])[0]
            scores[rest] *= np.exp(-(iou**2) / max(sigma, 1e-6))
    return np.array(order, dtype=np.int64), np.array(out_scores)


def peak_candidates(heatmap_prob: torch.Tensor, threshold: float, k: int) -> list[tuple[float, int, int]]:
    """Local maxima of a ``(h, w)`` probability map in a 3×3 window, above ``threshold``, best
    ``k`` first, as ``(score, row, col)``."""
    hm = heatmap_prob[None, None]
    peaks = hm == F.max_pool2d(hm, 3, stride=1, padding=1)
    scores = torch.where(peaks, hm, torch.zeros_like(hm)).flatten()
    k = min(k, scores.numel())
    top, idx = torch.topk(scores, k)
    w = heatmap_prob.shape[1]
    return [(float(s), int(i) // w, int(i) % w) for s, i in zip(top, idx) if float(s) >= threshold and float(s) > 0]


# ---- masks → outlines -----------------------------------------------------------------------


def _largest_contour(binary: np.ndarray) -> np.ndarray | None:
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    return c.reshape(-1, 2) if len(c) >= 3 else None


def mask_polygon_in_region(
    lesion_prob: np.ndarray, det: Detection, threshold: float = 0.5, margin: float = 0.25
) -> list[list[float]] | None:
    """Outline (model pixels) of the lesion-mask component belonging to ``det``: inside the
    detection's box grown by ``margin`` × its side, the thresholded component that overlaps the
    detection's ellipse most. ``None`` when no such component exists."""
    h, w = lesion_prob.shape
    x0, y0, x1, y1 = det.bbox_px
    mx, my = (x1 - x0) * margin + 2, (y1 - y0) * margin + 2
    c0, r0 = max(int(math.floor(x0 - mx)), 0), max(int(math.floor(y0 - my)), 0)
    c1, r1 = min(int(math.ceil(x1 + mx)) + 1, w), min(int(math.ceil(y1 + my)) + 1, h)
    if c1 <= c0 or r1 <= r0:
        return None
    region = (lesion_prob[r0:r1, c0:c1] >= threshold).astype(np.uint8)
    n, labels = cv2.connectedComponents(region, connectivity=8)
    if n <= 1:
        return None
    ell = np.zeros_like(region)
    pts = np.asarray(ellipse_polygon(det.center_px, det.long_axis_px, det.short_axis_px, det.angle_deg), np.float64)
    pts -= [c0, r0]
    cv2.fillPoly(ell, [np.round(pts * 16).astype(np.int32)], 1, shift=4)
    overlap = np.bincount(labels[ell > 0].ravel(), minlength=n)[1:]
    if overlap.max() == 0:
        return None
    comp = labels == (int(np.argmax(overlap)) + 1)
    contour = _largest_contour(comp)
    if contour is None:
        return None
    return (contour.astype(np.float64) + [c0, r0]).tolist()


def outline_axes(polygon_px: list[list[float]]) -> tuple[float, float, float]:
    """Caliper long axis, short axis (full diameters) and long-axis angle of an outline traced
    through pixel centres; each axis gains one pixel for the half pixel beyond the centres."""
    from livus.shapes import ellipse_from_polygon

    _, _, long_px, short_px, angle = ellipse_from_polygon(polygon_px)
    return long_px + 1.0, short_px + 1.0, angle


def liver_polygon(outputs: dict[str, torch.Tensor], i: int, threshold: float = 0.5) -> list[list[float]] | None:
    """Outline (model pixels) of the largest liver-mask component of batch item ``i``."""
    prob = torch.sigmoid(outputs["liver_mask"][i, 0].float()).cpu().numpy()
    contour = _largest_contour(prob >= threshold)
    return None if contour is None else contour.astype(np.float64).tolist()


def _valid_for_item(valid_mask: torch.Tensor | None, b: int) -> torch.Tensor | None:
    """The ``(S, S)`` fan mask of batch item ``b`` from a ``(S,S)``/``(B,S,S)``/``(B,1,S,S)`` mask."""
    if valid_mask is None:
        return None
    vm = valid_mask.reshape(-1, *valid_mask.shape[-2:])
    return vm[0] if vm.shape[0] == 1 else vm[b]


# ---- main entry -----------------------------------------------------------------------------


def decode_detections(
    outputs: dict[str, torch.Tensor],
    cfg: DetectorConfig,
    valid_mask: torch.Tensor | None = None,
    score_threshold: float | None = None,
) -> list[list[Detection]]:
    """Detections per batch item (model pixels), best first, at most ``cfg.max_detections``.

    Peaks of the sigmoid heatmap (3×3 maxima ≥ ``cfg.candidate_threshold``, at most
    ``cfg.max_candidates``) whose centre falls inside ``valid_mask`` (``(S,S)``, ``(B,S,S)`` or ``(B,1,S,S)``,
    nonzero = inside the fan; ``None`` = everywhere) become oriented ellipses; Gaussian soft-NMS
    over their boxes rescores them; those scoring ≥ ``score_threshold`` (default
    ``cfg.score_threshold``) are kept, with an outline from the lesion mask (else the ellipse).
    With ``cfg.axes_from_mask`` the axes and angle of a detection with a mask outline are measured
    on that outline (the regression heads give them otherwise).
    """
    if cfg.decode_mode == "mask":
        return decode_mask_components(outputs, cfg, valid_mask, score_threshold)
    if cfg.decode_mode != "heatmap":
        raise ValueError(f"unknown decode_mode {cfg.decode_mode!r} (mask | heatmap)")
    thr = cfg.score_threshold if score_threshold is None else score_threshold
    heat = torch.sigmoid(outputs["heatmap"].detach().float())
    axes = outputs["axes"].detach().float()
    orient = outputs["orient"].detach().float()
    offset = outputs["offset"].detach().float()
    lesion_prob = torch.sigmoid(outputs["lesion_mask"].detach().float())
    results: list[list[Detection]] = []
    for b in range(heat.shape[0]):
        vm = _valid_for_item(valid_mask, b)
        cands: list[Detection] = []
        for score, r, c in peak_candidates(heat[b, 0], cfg.candidate_threshold, cfg.max_candidates):
            cx = float(cell_to_pixel(c + float(offset[b, 0, r, c])))
            cy = float(cell_to_pixel(r + float(offset[b, 1, r, c])))
            if vm is not None:
                yi = min(max(int(round(cy)), 0), vm.shape[0] - 1)
                xi = min(max(int(round(cx)), 0), vm.shape[1] - 1)
                if not bool(vm[yi, xi]):
                    continue
            ax = torch.exp(axes[b, :, r, c].clamp(-2.0, 8.0))
            long_px, short_px = float(ax.max()), float(ax.min())
            angle = orient_to_angle(float(orient[b, 0, r, c]), float(orient[b, 1, r, c]))
            cands.append(Detection((cx, cy), long_px, short_px, angle, score))
        dets: list[Detection] = []
        if cands:
            order, new_scores = soft_nms(np.array([d.bbox_px for d in cands]), np.array([d.score for d in cands]), cfg.soft_nms_sigma)
            prob_np = lesion_prob[b, 0].cpu().numpy()
            for i, s in zip(order, new_scores):
                if s < thr or len(dets) >= cfg.max_detections:
                    continue
                d = cands[int(i)]
                d.score = float(s)
                poly = mask_polygon_in_region(prob_np, d, cfg.mask_threshold, cfg.polygon_margin)
                if poly is not None and cfg.axes_from_mask:
                    d.long_axis_px, d.short_axis_px, d.angle_deg = outline_axes(poly)
                d.polygon_px = poly if poly is not None else ellipse_polygon(d.center_px, d.long_axis_px, d.short_axis_px, d.angle_deg)
                dets.append(d)
        results.append(dets)
    return results


def decode_mask_components(
    outputs: dict[str, torch.Tensor],
    cfg: DetectorConfig,
    valid_mask: torch.Tensor | None = None,
    score_threshold: float | None = None,
) -> list[list[Detection]]:
    """Detections from the lesion-mask head (model pixels): each connected component of
    ``sigmoid(lesion_mask) >= cfg.component_threshold`` inside the fan becomes a lesion with its
    outline as polygon, the caliper ellipse of that outline (``ellipse_from_polygon``) and its
    peak probability as score — or, with ``cfg.score_calibration``, the calibrated probability
    (:func:`calibrate_score`) of its evidence (mask peak, centre-heatmap peak inside it, the
    image-level lesion probability, its area). Components scoring below ``score_threshold``
    (default ``cfg.score_threshold``) or smaller than ``cfg.min_component_px`` are dropped; at
    most ``cfg.max_detections`` are kept, best first."""
    from livus.shapes import ellipse_from_polygon

    thr = cfg.score_threshold if score_threshold is None else score_threshold
    prob_all = torch.sigmoid(outputs["lesion_mask"].detach().float())[:, 0].cpu().numpy()
    heat_all = torch.sigmoid(outputs["heatmap"].detach().float())[:, 0].cpu().numpy()
    results: list[list[Detection]] = []
    for b in range(prob_all.shape[0]):
        prob = prob_all[b]
        p_image = image_lesion_probability(outputs, b)
        vm = _valid_for_item(valid_mask, b)
        if vm is not None:
            prob = prob * vm.cpu().numpy().astype(bool)
        n, labels, stats, _ = cv2.connectedComponentsWithStats((prob >= cfg.component_threshold).astype(np.uint8), connectivity=8)
        dets: list[Detection] = []
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < cfg.min_component_px:
                continue
            comp = labels == k
            peak = float(prob[comp].max())
            evidence = _component_evidence(comp, peak, heat_all[b], p_image, int(stats[k, cv2.CC_STAT_AREA]))
            score = calibrate_score(evidence, cfg.score_calibration) if cfg.score_calibration else peak
            contour = _largest_contour(comp)
            if score < thr or contour is None:
                continue
            pts = contour.astype(np.float64)
            cx, cy, long_px, short_px, angle = ellipse_from_polygon(pts.tolist())
            # contour points are pixel centres: the outline reaches half a pixel further
            dets.append(Detection((cx, cy), long_px + 1.0, short_px + 1.0, angle, score, pts.tolist(), evidence))
        dets.sort(key=lambda d: -d.score)
        results.append(dets[: cfg.max_detections])
    return results


def _component_evidence(comp: np.ndarray, peak: float, heat: np.ndarray, p_image: float | None, area_px: int) -> tuple[float, ...]:
    """:data:`EVIDENCE_NAMES` of one mask component (model pixels; ``heat`` at stride 4). Without
    an image-level head the image evidence is 0 (neutral)."""
    ys, xs = np.nonzero(comp)
    cells = heat[np.clip(ys // STRIDE, 0, heat.shape[0] - 1), np.clip(xs // STRIDE, 0, heat.shape[1] - 1)]
    image = float(_logit(p_image)) if p_image is not None else 0.0
    return (float(_logit(peak)), float(_logit(float(cells.max()))), image, float(np.log(max(area_px, 1))))
