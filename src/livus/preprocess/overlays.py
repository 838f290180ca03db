"""Burned-in overlays: text, rulers, caliper marks, body-marker icons, colour bars.

Detection returns a ``uint8`` 0/1 mask in original pixels. Removal blanks overlays outside the
fan and inpaints them inside it (``cv2.inpaint``). Detection is hand-written morphology (no
library detects ultrasound annotations):

* outside the fan, anything brighter than the background is an overlay (the background is
  black on every scanner);
* inside the fan, overlays are thin, nearly saturated, sharply bounded marks: a white top-hat
  (bright structure narrower than a few pixels) above a high absolute grey level, whose blobs
  are small; smooth bright tissue (diaphragm, calcifications) has a lower top-hat response
  because it is wider or less saturated;
* pixels that carried colour in the source (``Frame.color_mask``) are overlays.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class OverlayParams:
    """Tuning of :func:`detect_overlays` (grey 0–255, sizes in original pixels)."""

    outside_floor_grey: int = 40  # outside the fan: brighter than background + this is overlay
    inside_min_grey: int = 220  # inside the fan: overlay marks are at least this bright
    tophat_px: int = 9  # structuring element of the white top-hat (marks are thinner)
    tophat_min: int = 90  # top-hat response needed inside the fan
    max_blob_area_px: int = 1500  # larger bright blobs inside the fan are tissue
    dilate_px: int = 2  # grow the mask to cover anti-aliased / JPEG-blurred edges
    fan_margin_px: int = 2  # band at the fan border treated as outside


def detect_overlays(
    grey: np.ndarray,
    fan_mask: np.ndarray | None,
    color_mask: np.ndarray | None = None,
    params: OverlayParams | None = None,
) -> np.ndarray:
    """Mask (uint8 0/1, original pixels) of burned-in overlays of a grey ``uint8`` frame."""
    params = params or OverlayParams()
    h, w = grey.shape
    if fan_mask is None:
        fan_mask = np.ones((h, w), np.uint8)
    inside = cv2.erode(fan_mask.astype(np.uint8), np.ones((2 * params.fan_margin_px + 1,) * 2, np.uint8))
    outside = fan_mask == 0
    # the background level from every 4th pixel (it is one flat black level)
    sub = grey[::4, ::4][outside[::4, ::4]]
    background = float(np.median(sub)) if sub.size else 0.0
    mask = (outside & (grey > background + params.outside_floor_grey)).astype(np.uint8)

    # inside the fan: work on a 2× max-pooled copy (thin bright marks survive max pooling)
    g2 = cv2.dilate(grey, np.ones((2, 2), np.uint8), anchor=(0, 0))[::2, ::2]
    in2 = inside[::2, ::2]
    t = max(3, params.tophat_px // 2 | 1)
    tophat = cv2.morphologyEx(g2, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (t, t)))
    cand = ((tophat >= params.tophat_min) & (g2 >= params.inside_min_grey) & (in2 > 0)).astype(np.uint8)
    if cand.any():
        # label only the candidates' bounding box (labelling the whole frame costs ~1 ms)
        bx, by, bw, bh = cv2.boundingRect(cand)
        crop = cand[by : by + bh, bx : bx + bw]
        n, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
        keep = np.zeros(n, bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] <= params.max_blob_area_px // 4
        small = keep[labels].astype(np.uint8)
        if small.any():
            # back to original pixels (2× nearest) inside the box only
            up = np.repeat(np.repeat(small, 2, 0), 2, 1)[: h - 2 * by, : w - 2 * bx]
            ys, xs = slice(2 * by, 2 * by + up.shape[0]), slice(2 * bx, 2 * bx + up.shape[1])
            mask[ys, xs] |= up & inside[ys, xs]
    if color_mask is not None:
        mask |= (color_mask > 0).astype(np.uint8)
    if params.dilate_px > 0 and mask.any():
        k = 2 * params.dilate_px + 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return mask


def remove_overlays(
    grey: np.ndarray, overlay_mask: np.ndarray, fan_mask: np.ndarray | None, inpaint_radius_px: float = 3.0
) -> np.ndarray:
    """Inpaint overlay pixels inside the fan (Telea) and set those outside it to 0.

    Works in whatever pixel frame the inputs share (e.g. model space, where it is cheapest).
    """
    if not overlay_mask.any():
        return grey
    u8 = grey if grey.dtype == np.uint8 else np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = cv2.inpaint(u8, overlay_mask.astype(np.uint8), inpaint_radius_px, cv2.INPAINT_TELEA)
    if fan_mask is not None:
        out[(overlay_mask > 0) & (fan_mask == 0)] = 0
    if grey.dtype != np.uint8:
        return out.astype(np.float32) / 255.0
    return out
