"""Grey-level augmentation for what differs between ultrasound scanners and presets.

Images from other hospitals differ from the training set less in anatomy than in the imaging
chain: lateral/axial resolution and zoom (resampling), overall gain and time-gain compensation
(smooth gain bands along depth), dynamic range / log compression, speckle grain size, the
amount of smoothing the scanner applies, and burned-in markers (calipers, crosses, text) that
the overlay removal may leave. :func:`scanner_augment` draws a random mix of these on one
model-space image (float32 in ``[0, 1]``, ``S × S``, depth along rows), keeping pixels outside
the fan (``valid == 0``) at 0. Geometry is not changed, so label masks stay valid.

Written with NumPy/OpenCV directly rather than albumentations: the time-gain bands, speckle
grain and fan-restricted markers need the fan mask and depth axis, which albumentations'
transforms do not take.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class ScannerAugmentConfig:
    """Probability and range of each scanner effect."""

    resample_p: float = 0.3
    resample_range: tuple[float, float] = (0.35, 0.8)  # down-sampling factor before up-sampling back
    tgc_p: float = 0.5
    tgc_strength: float = 0.35  # gain of the depth bands: exp(±strength)
    dynamic_range_p: float = 0.5
    speckle_p: float = 0.4
    speckle_sigma: tuple[float, float] = (0.05, 0.25)
    speckle_grain_px: tuple[float, float] = (1.0, 4.0)
    blur_p: float = 0.3
    blur_sigma_px: tuple[float, float] = (0.5, 1.8)
    sharpen_p: float = 0.15
    markers_p: float = 0.25


def _depth_gain(s: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth gain per row (depth): a few random knots interpolated, like TGC sliders."""
    knots = int(rng.integers(4, 9))
    values = np.exp(rng.uniform(-strength, strength, knots))
    return np.interp(np.arange(s), np.linspace(0, s - 1, knots), values).astype(np.float32)


def _speckle(shape: tuple[int, int], rng: np.random.Generator, sigma: float, grain_px: float) -> np.ndarray:
    """Multiplicative speckle field (mean 1) whose grain is ``grain_px`` model pixels."""
    h, w = shape
    sh, sw = max(2, int(round(h / grain_px))), max(2, int(round(w / grain_px)))
    field = rng.normal(0.0, 1.0, (sh, sw)).astype(np.float32)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    field /= max(float(field.std()), 1e-6)
    return np.exp(sigma * field - 0.5 * sigma**2).astype(np.float32)


def _markers(image: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Burned-in marks inside the fan: calipers ('+'), dotted lines or short text-like strokes."""
    s = image.shape[0]
    ys, xs = np.nonzero(valid)
    if len(ys) == 0:
        return image
    img = image.copy()
    for _ in range(int(rng.integers(1, 4))):
        j = int(rng.integers(len(ys)))
        x, y = int(xs[j]), int(ys[j])
        value = float(rng.uniform(0.7, 1.0))
        kind = int(rng.integers(3))
        if kind == 0:
            r = int(rng.integers(2, 5))
            cv2.line(img, (x - r, y), (x + r, y), value, 1)
            cv2.line(img, (x, y - r), (x, y + r), value, 1)
        elif kind == 1:
            x2, y2 = int(np.clip(x + rng.integers(-s // 4, s // 4), 0, s - 1)), int(np.clip(y + rng.integers(-s // 4, s // 4), 0, s - 1))
            n = max(2, int(np.hypot(x2 - x, y2 - y) / 4))
            for t in np.linspace(0, 1, n):
                cv2.circle(img, (int(x + t * (x2 - x)), int(y + t * (y2 - y))), 0, value, -1)
        else:
            text = "".join(rng.choice(list("ABCDEFGHKLMNPRSTVX0123456789."), int(rng.integers(2, 6))))
            stroke = np.zeros(img.shape, np.uint8)  # putText draws on 8-bit images only
            cv2.putText(stroke, text, (x, y), cv2.FONT_HERSHEY_PLAIN, float(rng.uniform(0.5, 0.9)), 255, 1)
            img[stroke > 0] = value
    return img


def scanner_augment(
    image: np.ndarray, valid: np.ndarray, rng: np.random.Generator, cfg: ScannerAugmentConfig | None = None
) -> np.ndarray:
    """One random draw of scanner effects on a model-space image (see the module docstring)."""
    c = cfg or ScannerAugmentConfig()
    img = np.clip(image.astype(np.float32), 0.0, 1.0)
    s = img.shape[0]
    inside = valid > 0
    if rng.random() < c.resample_p:
        f = float(rng.uniform(*c.resample_range))
        small = cv2.resize(img, (max(8, int(s * f)), max(8, int(s * rng.uniform(f, 1.0)))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)
    if rng.random() < c.blur_p:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(*c.blur_sigma_px)))
    elif rng.random() < c.sharpen_p:
        blur = cv2.GaussianBlur(img, (0, 0), 1.0)
        img = img + float(rng.uniform(0.3, 1.0)) * (img - blur)
    if rng.random() < c.speckle_p:
        img = img * _speckle((s, s), rng, float(rng.uniform(*c.speckle_sigma)), float(rng.uniform(*c.speckle_grain_px)))
    if rng.random() < c.tgc_p:
        img = img * _depth_gain(s, rng, c.tgc_strength)[:, None]
    if rng.random() < c.dynamic_range_p:
        # log-compression / dynamic range: a contrast curve around mid-grey, then gamma
        contrast = float(np.exp(rng.uniform(-0.4, 0.4)))
        img = np.clip(0.5 + (img - 0.5) * contrast, 0, 1) ** float(np.exp(rng.uniform(-0.35, 0.35)))
    img = np.clip(img, 0.0, 1.0)
    if rng.random() < c.markers_p:
        img = _markers(img, inside.astype(np.uint8), rng)
    return (img * inside).astype(np.float32)
