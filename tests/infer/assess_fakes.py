"""Inputs that are not assessable liver ultrasound, made with OpenCV/numpy (no real data):
an echo-like clip (a sector whose depth shows dark, beating chambers under a bright wall, as a
cardiac echo does) and a B-mode still with a colour-Doppler box."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _sector(w: int, h: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, -h // 4), (int(h * 1.2), int(h * 1.2)), 90, -35, 35, 1, -1)
    cv2.circle(mask, (w // 2, -h // 4), int(h * 0.3), 0, -1)
    return mask


def _speckle(rng: np.random.Generator, w: int, h: int, sigma: float = 1.2) -> np.ndarray:
    re_, im_ = (cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), sigma) for _ in range(2))
    env = np.hypot(re_, im_)
    return env / env.mean()


def echo_like_frame(i: int, w: int = 320, h: int = 240, seed: int = 0) -> np.ndarray:
    """Frame ``i`` of an echo-like clip: bright near field, three dark chambers that beat
    (8 frames a beat). The quality gate calls most such frames ``liver_not_in_view``, a few
    ``heavily_shadowed`` and, in the diastole, one ``ok``."""
    rng = np.random.default_rng(seed * 1000 + i)
    mask = _sector(w, h)
    rows = np.nonzero(mask.any(1))[0]
    top, bot = rows[0], rows[-1]
    level = np.full((h, w), 70.0, np.float32)
    level[: int(top + 0.18 * (bot - top))] = 150.0
    img = _speckle(rng, w, h) * level
    beat = 1.0 + 0.15 * np.sin(2 * np.pi * i / 8)
    for cx, cy, a, b in ((0.40, 0.42, 0.16, 0.20), (0.62, 0.45, 0.13, 0.18), (0.45, 0.75, 0.14, 0.10)):
        cv2.ellipse(img, (int(cx * w), int(cy * h)), (int(a * w * beat), int(b * h * beat)), 0, 0, 360, 3.0, -1)
    return np.clip(img, 0, 255).astype(np.uint8) * mask


def write_echo_like_clip(path: Path, n_frames: int = 12, fps: float = 10.0) -> Path:
    """The echo-like clip as an MJPG AVI."""
    from livus.simulate.video import write_video

    write_video(path, [echo_like_frame(i) for i in range(n_frames)], fps, quality=95)
    return path


def doppler_still(grey: np.ndarray, box_share: float = 0.3, seed: int = 0) -> np.ndarray:
    """A BGR copy of a B-mode still with red/blue flow inside a colour box at the centre of the
    lit region (as a colour-Doppler screenshot)."""
    rng = np.random.default_rng(seed)
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    ys, xs = np.nonzero(grey > 0)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    bh, bw = int(box_share * (ys.max() - ys.min())), int(box_share * (xs.max() - xs.min()))
    box = np.zeros(grey.shape, bool)
    box[cy - bh // 2: cy + bh // 2, cx - bw // 2: cx + bw // 2] = True
    flow = cv2.GaussianBlur(rng.normal(0, 1, grey.shape).astype(np.float32), (0, 0), 6)
    flow /= flow.std() + 1e-6
    bgr[(flow > 0.5) & box & (grey > 0)] = (30, 30, 220)
    bgr[(flow < -0.5) & box & (grey > 0)] = (220, 80, 20)
    return bgr
