"""Small synthetic B-mode-like frames drawn with OpenCV for the preprocessing tests."""

from __future__ import annotations

import cv2
import numpy as np


def sector_polygon(w: int, h: int, apex_y: float = -60.0, r0: float = 120.0, r1: float | None = None,
                   half_angle_deg: float = 35.0, n: int = 48) -> np.ndarray:
    """Convex-probe sector outline (original pixels): arcs of radius r0 and r1 around an apex
    above the image top."""
    cx = w / 2.0
    r1 = r1 if r1 is not None else h - 20 - apex_y
    a = np.radians(np.linspace(-half_angle_deg, half_angle_deg, n))
    outer = np.stack([cx + r1 * np.sin(a), apex_y + r1 * np.cos(a)], 1)
    inner = np.stack([cx + r0 * np.sin(a[::-1]), apex_y + r0 * np.cos(a[::-1])], 1)
    return np.concatenate([outer, inner])


def speckle_frame(w: int = 640, h: int = 480, seed: int = 0, linear: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grey uint8, fan mask 0/1, fan polygon) with Rayleigh speckle, a dark cyst and depth decay."""
    rng = np.random.default_rng(seed)
    if linear:
        poly = np.array([[w * 0.2, 20], [w * 0.8, 20], [w * 0.8, h - 20], [w * 0.2, h - 20]], float)
    else:
        poly = sector_polygon(w, h)
    fan = np.zeros((h, w), np.uint8)
    cv2.fillPoly(fan, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    tissue = rng.rayleigh(45.0, (h, w)).astype(np.float32)
    tissue = cv2.GaussianBlur(tissue, (0, 0), 1.2) * np.linspace(1.2, 0.6, h)[:, None]
    cv2.circle(tissue, (int(w * 0.45), int(h * 0.55)), int(h * 0.08), 4.0, -1)
    img = np.clip(tissue, 0, 255).astype(np.uint8) * fan
    return img, fan, poly
