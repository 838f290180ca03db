"""Weak supervision: an image-label classifier whose class-activation map (CAM) gives pseudo-boxes.

The :class:`ImageClassifier` sees the whole preprocessed fan (``preprocess_frame`` output in
MODEL pixels, ``S × S``, via the detector's :class:`livus.train.datasets.ModelSpaceCache`) and is
trained with image labels only (``normal`` / ``benign`` / ``malignant``), never with masks or
boxes. Its CAM (Zhou et al. 2016) for class ``c`` is ``Σ_k w_ck F_k`` over the last feature maps
``F`` (stride 16) and the linear head's weights ``w``, upsampled to model pixels, limited to the fan
and scaled to ``[0, 1]``.

:func:`pseudo_box` thresholds a CAM at ``frac`` × its peak and takes the box of the connected
region around the peak (model pixels, pixel edges); :func:`box_to_original` maps it to ORIGINAL
pixels with the frame's letterbox. :func:`pseudo_lesion_dataset` turns pseudo-boxes into lesion
annotations (the inscribed ellipse as outline, the image's class as malignancy) so that
:func:`livus.train.classifier.build_samples` can crop them like expert outlines.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from livus.io.dataset import Dataset, LesionAnnotation
from livus.models.blocks import ConvBNAct, ResidualBlock
from livus.preprocess.geometry import Letterbox

CLASSES = ("normal", "benign", "malignant")


@dataclass
class WeakConfig:
    """Image-level classifier and its training (model pixels: ``S`` = the cache's size)."""

    widths: tuple[int, ...] = (16, 32, 64, 96)  # stem (stride 2), then one stride-2 stage each: CAM at stride 16
    epochs: int = 20
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0
    augment: bool = True
    balance_classes: bool = True  # cross-entropy weights ∝ 1 / class count
    cam_frac: float = 0.5  # pseudo-box: CAM ≥ cam_frac × peak, region connected to the peak


class ImageClassifier(nn.Module):
    """Small residual CNN on one grey ``(N, 1, S, S)`` image; global average pooling and one
    linear layer, so the CAM is exact (``logit_c = mean_ij CAM_c[i, j] + b_c``)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), n_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.stem = ConvBNAct(1, widths[0], 3, stride=2)
        self.stages = nn.Sequential(*[ResidualBlock(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:])])
        self.head = nn.Linear(widths[-1], n_classes)
        self.stride = 2 ** len(widths)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature maps ``(N, C, S/stride, S/stride)``."""
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, n_classes)``."""
        return self.head(self.features(x).mean(dim=(2, 3)))


def class_indices(classes: list[str]) -> np.ndarray:
    """Index in :data:`CLASSES` of each image class name."""
    return np.asarray([CLASSES.index(c) for c in classes], np.int64)


def train_image_classifier(images: np.ndarray, labels: np.ndarray, valid: np.ndarray, wcfg: WeakConfig,
                           log: list[dict] | None = None) -> ImageClassifier:
    """Train on model-space images ``(N, S, S)`` float in ``[0, 1]`` with class indices ``labels``
    ``(N,)`` and fan masks ``valid`` ``(N, S, S)``; augmentation (flip, similarity, grey levels) is
    the detector's :func:`livus.train.datasets.augment_sample`. AdamW, one-cycle schedule."""
    from livus.train.datasets import augment_sample

    torch.manual_seed(wcfg.seed)
    rng = np.random.default_rng(wcfg.seed)
    model = ImageClassifier(wcfg.widths)
    opt = torch.optim.AdamW(model.parameters(), lr=wcfg.lr, weight_decay=wcfg.weight_decay)
    steps = max(1, math.ceil(len(images) / wcfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=wcfg.lr, total_steps=wcfg.epochs * steps, pct_start=0.2)
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float64)
    weight = None
    if wcfg.balance_classes:
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
        weight = torch.tensor(w, dtype=torch.float32)
    y_all = torch.from_numpy(np.asarray(labels, np.int64))
    empty = np.zeros(images.shape[1:], np.uint8)
    for epoch in range(wcfg.epochs):
        model.train()
        t0, total = time.time(), 0.0
        order = rng.permutation(len(images))
        for b in range(steps):
            idx = order[b * wcfg.batch_size : (b + 1) * wcfg.batch_size]
            if len(idx) < 2:
                continue
            if wcfg.augment:
                x = np.stack([augment_sample(images[i], empty, empty, valid[i], rng)[0] for i in idx])
            else:
                x = images[idx]
            loss = F.cross_entropy(model(torch.from_numpy(x.astype(np.float32))[:, None]), y_all[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log is not None:
            log.append({"epoch": epoch + 1, "loss": total / len(images), "seconds": round(time.time() - t0, 2)})
    return model.eval()


@torch.no_grad()
def predict_classes(model: ImageClassifier, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` of model-space images ``(N, S, S)``."""
    model.eval()
    out = [torch.softmax(model(torch.from_numpy(images[i : i + batch].astype(np.float32))[:, None]), dim=1)
           for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


@torch.no_grad()
def class_activation_maps(model: ImageClassifier, images: np.ndarray, classes: np.ndarray, valid: np.ndarray | None = None,
                          batch: int = 32, edge_margin_px: int = 0) -> np.ndarray:
    """CAM of class ``classes[n]`` for each image ``(N, S, S)``: bilinear upsampling of
    ``Σ_k w_ck F_k`` to model pixels, zero outside the fan ``valid`` (when given; shrunk by
    ``edge_margin_px`` model pixels, which keeps fan-edge responses out), min–max scaled to
    ``[0, 1]`` inside it (a flat map is all zero)."""
    if valid is not None and edge_margin_px > 0:
        kernel = np.ones((2 * edge_margin_px + 1, 2 * edge_margin_px + 1), np.uint8)
        valid = np.stack([cv2.erode((np.asarray(v) > 0).astype(np.uint8), kernel) for v in valid])
    model.eval()
    maps = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch].astype(np.float32))[:, None]
        f = model.features(x)
        w = model.head.weight[torch.from_numpy(np.asarray(classes[i : i + batch], np.int64))]
        cam = torch.einsum("nc,nchw->nhw", w, f)[:, None]
        maps.append(F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0])
    cams = torch.cat(maps).numpy().astype(np.float32)
    inside = np.ones(cams.shape, bool) if valid is None else np.asarray(valid) > 0
    out = np.zeros_like(cams)
    for n in range(len(cams)):
        v = cams[n][inside[n]]
        if v.size and v.max() > v.min():
            out[n] = np.where(inside[n], (cams[n] - v.min()) / (v.max() - v.min()), 0.0)
    return out


def cam_peak(cam: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` model pixel of the map's maximum (first one on ties)."""
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(x), int(y)


def pseudo_box(cam: np.ndarray, frac: float = 0.5) -> tuple[list[float], tuple[int, int]]:
    """Pseudo-box ``[x0, y0, x1, y1]`` (model pixels, outer pixel edges, i.e. ``x_min − 0.5`` to
    ``x_max + 0.5`` in pixel-centre coordinates) of the region ``cam ≥ frac · peak`` connected
    (8-neighbours) to the peak, and the peak ``(x, y)``."""
    px, py = cam_peak(cam)
    region = (cam >= frac * cam[py, px]).astype(np.uint8)
    _, lab = cv2.connectedComponents(region, connectivity=8)
    ys, xs = np.nonzero(lab == lab[py, px])
    return [xs.min() - 0.5, ys.min() - 0.5, xs.max() + 0.5, ys.max() + 0.5], (px, py)


def box_to_original(box_model: list[float], lb: Letterbox) -> list[float]:
    """A box ``[x0, y0, x1, y1]`` in model-pixel coordinates → original-pixel coordinates (the
    letterbox is affine, so the corners map directly)."""
    corners = lb.points_to_original(np.array([box_model[:2], box_model[2:]], np.float64))
    return [float(v) for v in corners.ravel()]


def box_iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes (same frame)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def ellipse_polygon(box_xyxy: list[float], n: int = 32) -> list[list[float]]:
    """``n`` points of the ellipse inscribed in a box (same frame as the box)."""
    x0, y0, x1, y1 = box_xyxy
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1).tolist()


def pseudo_lesion_dataset(ds: Dataset, image_positions: list[int], boxes_xyxy: list[list[float]]) -> Dataset:
    """A dataset view holding only the images at ``image_positions`` of ``ds``, each with ONE
    lesion: the ellipse inscribed in its pseudo-box (original pixels), malignant = the image's
    class is ``malignant``. Expert outlines of those images are dropped."""
    records = []
    for i, box in zip(image_positions, boxes_xyxy):
        rec = ds.images[i]
        les = LesionAnnotation(polygon_px=ellipse_polygon(box), malignant=rec.image_class == "malignant")
        records.append(replace(rec, lesions=[les]))
    return Dataset(ds.root, records, dict(ds.info))


@dataclass
class CamCheck:
    """Per image: the CAM peak in ORIGINAL pixels, whether it lies inside the true lesion mask,
    the pseudo-box (original pixels) and its IoU with the true lesion box."""

    peak_px: tuple[float, float]
    peak_inside: bool
    box_px: list[float]
    iou: float


def check_cam(cam: np.ndarray, lb: Letterbox, lesion_mask: np.ndarray, true_box: list[float], frac: float = 0.5) -> CamCheck:
    """Compare one CAM (model pixels) with the true lesion (``lesion_mask`` > 0 and its box
    ``true_box``, both ORIGINAL pixels)."""
    box_m, (px, py) = pseudo_box(cam, frac)
    ox, oy = lb.points_to_original(np.array([[px, py]], np.float64))[0]
    h, w = lesion_mask.shape
    xi, yi = int(np.clip(round(ox), 0, w - 1)), int(np.clip(round(oy), 0, h - 1))
    box = box_to_original(box_m, lb)
    return CamCheck((float(ox), float(oy)), bool(lesion_mask[yi, xi] > 0), box, box_iou(box, true_box))
