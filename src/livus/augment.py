"""Training augmentation in model space (albumentations) and lesion copy-paste.

``augment_sample`` applies one random draw of small rotations, horizontal flip, mild scaling,
random crops, gamma/contrast (gain and dynamic range of other devices) and coarse dropout
(rib/gas shadows) consistently to the image and every mask; lesion ellipses are re-derived from
the transformed instance mask (:func:`lesion_ellipses`), so labels never drift from pixels.

``copy_paste_lesion`` cuts an annotated lesion and pastes it, alpha-feathered and grey-matched,
into the liver parenchyma of another image — only where the whole lesion lies inside
liver ∩ fan and does not touch an existing lesion.

Mask conventions: ``masks["lesion"]`` is an instance mask (0 background, k = k-th lesion);
``masks["liver"]`` and ``masks["valid"]`` (the fan) are 0/1. Images are float32 in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np

from livus.shapes import ellipse_from_polygon


@dataclass
class AugmentConfig:
    """Strength of each augmentation (probabilities and ranges)."""

    rotate_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    translate_share: float = 0.05
    affine_p: float = 0.7
    flip_p: float = 0.5
    crop_scale: tuple[float, float] = (0.75, 1.0)  # area share kept by the random crop
    crop_p: float = 0.3
    gamma_range: tuple[float, float] = (70.0, 150.0)  # albumentations gamma_limit (×100)
    gamma_p: float = 0.5
    contrast_limit: float = 0.25
    brightness_limit: float = 0.15
    contrast_p: float = 0.5
    dropout_holes: tuple[int, int] = (1, 3)
    dropout_size: tuple[float, float] = (0.06, 0.2)  # hole side as a share of the image side
    dropout_p: float = 0.3


def build_augmenter(cfg: AugmentConfig, size: int) -> A.Compose:
    """Albumentations pipeline for ``size × size`` model inputs (masks use nearest neighbour)."""
    return A.Compose(
        [
            A.HorizontalFlip(p=cfg.flip_p),
            A.Affine(
                rotate=(-cfg.rotate_deg, cfg.rotate_deg),
                scale=cfg.scale_range,
                translate_percent=(-cfg.translate_share, cfg.translate_share),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                p=cfg.affine_p,
            ),
            A.RandomResizedCrop(
                size=(size, size), scale=cfg.crop_scale, ratio=(0.9, 1.1),
                interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST, p=cfg.crop_p,
            ),
            A.RandomGamma(gamma_limit=cfg.gamma_range, p=cfg.gamma_p),
            A.RandomBrightnessContrast(
                brightness_limit=cfg.brightness_limit, contrast_limit=cfg.contrast_limit, p=cfg.contrast_p
            ),
            A.CoarseDropout(
                num_holes_range=cfg.dropout_holes, hole_height_range=cfg.dropout_size,
                hole_width_range=cfg.dropout_size, fill=0, p=cfg.dropout_p,
            ),
        ]
    )


class Augmenter:
    """Reusable augmenter: ``Augmenter(size)(image, masks, rng)`` (see :func:`augment_sample`)."""

    def __init__(self, size: int, cfg: AugmentConfig | None = None) -> None:
        self.cfg = cfg or AugmentConfig()
        self.pipeline = build_augmenter(self.cfg, size)

    def __call__(
        self, image: np.ndarray, masks: dict[str, np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        names = list(masks)
        self.pipeline.set_random_seed(int(rng.integers(0, 2**31 - 1)))
        out = self.pipeline(image=image.astype(np.float32), masks=[masks[k] for k in names])
        img = np.clip(out["image"], 0.0, 1.0).astype(np.float32)
        new_masks = {k: np.ascontiguousarray(m).astype(masks[k].dtype) for k, m in zip(names, out["masks"])}
        if "valid" in new_masks:
            img = img * (new_masks["valid"] > 0)  # nothing outside the (moved) fan
        return img, new_masks


_AUGMENTERS: dict[int, Augmenter] = {}


def augment_sample(
    image: np.ndarray, masks: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One random augmentation of a model-space sample (image float32 [0, 1], masks by name).

    The same geometric transform is applied to the image and all masks; lesion ellipses follow
    from the returned instance mask via :func:`lesion_ellipses`. Deterministic for a given
    ``rng`` state.
    """
    size = int(image.shape[0])
    aug = _AUGMENTERS.get(size)
    if aug is None:
        aug = _AUGMENTERS.setdefault(size, Augmenter(size))
    return aug(image, masks, rng)


def lesion_ellipses(instance_mask: np.ndarray, min_area_px: int = 4) -> dict[int, list[float]]:
    """Oriented ellipse ``[cx, cy, long, short, angle_deg]`` (pixels of the mask) of each
    instance value, from the outline of its largest piece; tiny remnants are skipped."""
    out: dict[int, list[float]] = {}
    for v in np.unique(instance_mask):
        if v == 0:
            continue
        m = (instance_mask == v).astype(np.uint8)
        if int(m.sum()) < min_area_px:
            continue
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
        if len(c) < 3:
            continue
        out[int(v)] = ellipse_from_polygon(c.tolist())
    return out


# --- lesion copy-paste ----------------------------------------------------------------------


@dataclass
class PasteResult:
    """Outcome of :func:`copy_paste_lesion`: new image, instance mask, and where it went."""

    image: np.ndarray
    instance_mask: np.ndarray
    value: int  # instance value of the pasted lesion
    offset_xy: tuple[int, int]  # top-left of the pasted patch in the destination


def copy_paste_lesion(
    src_image: np.ndarray,
    src_instance_mask: np.ndarray,
    src_value: int,
    dst_image: np.ndarray,
    dst_instance_mask: np.ndarray,
    dst_liver_mask: np.ndarray,
    dst_valid_mask: np.ndarray,
    rng: np.random.Generator,
    feather_px: float = 2.0,
    margin_px: int = 3,
) -> PasteResult | None:
    """Paste lesion ``src_value`` of the source into the destination's liver ∩ fan.

    The lesion (with a ``margin_px`` ring) must fit entirely inside liver ∩ fan and keep
    ``margin_px`` away from existing lesions; a placement is drawn uniformly among the positions
    that allow this (``cv2.erode`` with the lesion footprint as kernel). Grey matching: the
    lesion's contrast to its own surrounding ring is kept and added to the destination's local
    mean; an alpha mask feathered by ``feather_px`` blends the edge. Returns ``None`` when the
    lesion fits nowhere. Images are float32 [0, 1] (any frame, same for source and destination).
    """
    les = (src_instance_mask == src_value).astype(np.uint8)
    if not les.any():
        return None
    ys, xs = np.nonzero(les)
    pad = margin_px + int(np.ceil(3 * feather_px))
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, les.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, les.shape[1])
    foot = les[y0:y1, x0:x1]
    patch = src_image[y0:y1, x0:x1].astype(np.float32)
    ph, pw = foot.shape
    H, W = dst_image.shape[:2]
    if ph >= H or pw >= W:
        return None
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1,) * 2)
    foot_margin = cv2.dilate(foot, k)
    allowed = ((dst_liver_mask > 0) & (dst_valid_mask > 0) & (dst_instance_mask == 0)).astype(np.uint8)
    if dst_instance_mask.any():
        allowed &= cv2.dilate((dst_instance_mask > 0).astype(np.uint8), k) == 0
    # anchor = top-left of the patch; feasible where every footprint pixel lands in `allowed`
    ok = cv2.erode(allowed, foot_margin, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ok[H - ph + 1 :, :] = 0
    ok[:, W - pw + 1 :] = 0
    cand = np.argwhere(ok > 0)
    if len(cand) == 0:
        return None
    ty, tx = cand[int(rng.integers(len(cand)))]
    ring = (cv2.dilate(foot, k) > 0) & (foot == 0)
    src_ring_mean = float(patch[ring].mean()) if ring.any() else float(patch[foot > 0].mean())
    region = dst_image[ty : ty + ph, tx : tx + pw].astype(np.float32)
    dst_ring_mean = float(region[ring].mean()) if ring.any() else float(region.mean())
    content = np.clip(patch - src_ring_mean + dst_ring_mean, 0.0, 1.0)
    alpha = cv2.GaussianBlur(foot.astype(np.float32), (0, 0), feather_px) if feather_px > 0 else foot.astype(np.float32)
    alpha = np.maximum(alpha, foot.astype(np.float32) * 0.999) * cv2.dilate(foot, k)  # inside: ~1, fades in the margin
    image = dst_image.astype(np.float32).copy()
    image[ty : ty + ph, tx : tx + pw] = alpha * content + (1.0 - alpha) * region
    value = int(dst_instance_mask.max()) + 1
    inst = dst_instance_mask.copy()
    inst[ty : ty + ph, tx : tx + pw][foot > 0] = value
    return PasteResult(image=image, instance_mask=inst, value=value, offset_xy=(int(tx), int(ty)))
