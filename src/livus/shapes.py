"""Lesion and region shapes in image pixels: outline polygon → filled mask, outline → oriented
ellipse. Pure functions on ``(x, y)`` pixel coordinates of one image (see :mod:`livus.types`
for the conventions); used by the dataset format, preprocessing, decoding and evaluation."""

from __future__ import annotations

import cv2
import numpy as np


def polygon_mask(polygon_px: list[list[float]] | None, width: int, height: int) -> np.ndarray:
    """Fill a polygon (pixel coordinates) into a ``uint8`` 0/1 mask of ``height × width``."""
    mask = np.zeros((height, width), np.uint8)
    if polygon_px is not None and len(polygon_px) >= 3:
        pts = np.round(np.asarray(polygon_px, dtype=np.float64) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask


def ellipse_from_polygon(polygon_px: list[list[float]]) -> list[float]:
    """Oriented ellipse ``[cx, cy, long, short, angle_deg]`` of a lesion outline.

    The long axis is the outline's largest extent (the sonographer's caliper measurement), the
    short axis the largest extent perpendicular to it; the centre is the midpoint of both.
    """
    pts = np.asarray(polygon_px, dtype=np.float64)
    if len(pts) < 3:
        raise ValueError("polygon needs at least 3 points")
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    d = hull[:, None, :] - hull[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    long_len = float(dist[i, j])
    u = (hull[j] - hull[i]) / max(long_len, 1e-9)
    if u[0] < 0 or (u[0] == 0 and u[1] < 0):
        u = -u
    n = np.array([-u[1], u[0]])
    proj_u = hull @ u
    proj_n = hull @ n
    short_len = float(proj_n.max() - proj_n.min())
    c = u * (proj_u.max() + proj_u.min()) / 2 + n * (proj_n.max() + proj_n.min()) / 2
    angle = float(np.degrees(np.arctan2(u[1], u[0]))) % 180.0
    return [float(c[0]), float(c[1]), long_len, short_len, angle]
