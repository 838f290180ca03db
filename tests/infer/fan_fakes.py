"""A synthetic ultrasound-like fan for pipeline tests (imported by test modules of this folder)."""

from __future__ import annotations

import cv2
import numpy as np


def speckle_fan(w: int, h: int, seed: int = 0) -> np.ndarray:
    """uint8 ``(h, w)``: a grey convex fan with speckle-like texture, black outside."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, -h // 4), (int(h * 1.1), int(h * 1.1)), 90, -35, 35, 1, -1)
    cv2.circle(mask, (w // 2, -h // 4), int(h * 0.35), 0, -1)
    # speckle: envelope of a blurred complex Gaussian field (correlated, Rayleigh-distributed)
    re_, im_ = (cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), 1.5) for _ in range(2))
    env = np.hypot(re_, im_)
    tex = np.clip(env / env.mean() * 60, 0, 255).astype(np.uint8)
    img[mask > 0] = tex[mask > 0]
    return img
