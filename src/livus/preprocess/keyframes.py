"""Keyframes from clips: a fixed interval, or a per-frame quality score that keeps the best frames.

Quality score of one frame (all terms in ``[0, 1]``, higher is better), computed inside the fan
on a small copy (``work_width_px`` wide) so scoring a clip is cheap:

* ``coverage``: share of the fan that carries echo (not black);
* ``sharpness``: variance of the Laplacian (focus measure), squashed to ``[0, 1]``;
* ``shadow``: share of the fan's columns (beams) that go dark below their first third — a rib or
  gas shadow darkens whole beams;
* ``motion``: blur against the previous frame — low sharpness relative to the clip's own median
  marks a motion-blurred frame;
* ``typicality``: how close the frame's coarse appearance (a 64-pixel-wide smoothed thumbnail) is
  to the clip's per-pixel median frame. Most frames of a liver sweep show the liver; a frame that
  deviates far more than the clip's typical deviation shows something else — the probe slid onto
  bowel gas (bright reverberation bands), or a rib shadow swept in.

``score = coverage * (1 - shadow) * (0.5 + 0.5 * sharpness_rel) * typicality`` with
``typicality = 1 / (1 + max(0, deviation / median deviation - 1.5))``. The best frames are picked
greedily with a minimum gap, so the keyframes still spread over the clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from livus.preprocess.fan import detect_fan
from livus.types import Frame


THUMB_WIDTH_PX = 64  # width of the thumbnails compared for typicality


@dataclass
class FrameQuality:
    """Quality terms of one frame (see module docstring)."""

    coverage: float
    sharpness: float  # Laplacian variance (grey levels²) inside the fan
    shadow_fraction: float
    score: float = 0.0
    thumbnail: np.ndarray | None = field(default=None, repr=False)  # 64 px wide, smoothed, float32
    thumbnail_fan: np.ndarray | None = field(default=None, repr=False)  # bool, same size
    typicality: float = 1.0  # filled by score_frames


def frame_quality(grey: np.ndarray, fan_mask: np.ndarray | None = None, work_width_px: int = 256,
                  dark_grey: float = 12.0) -> FrameQuality:
    """Quality terms of one grey ``uint8`` frame (``fan_mask`` in the same pixels; detected when
    ``None``). ``score`` is filled by :func:`score_frames` (it needs the whole clip)."""
    if fan_mask is None:
        fan_mask = detect_fan(grey).mask
    h, w = grey.shape
    k = min(1.0, work_width_px / w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    g = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32) if k < 1 else grey.astype(np.float32)
    fan = cv2.resize(fan_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0 if k < 1 else fan_mask > 0
    if not fan.any():
        return FrameQuality(0.0, 0.0, 1.0)
    smooth = cv2.GaussianBlur(g, (0, 0), 2.0)
    echo = (smooth > dark_grey) & fan
    coverage = float(echo.sum() / fan.sum())
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=3)
    inner = cv2.erode(fan.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    sharp = float(lap[inner].var()) if inner.any() else 0.0
    # shadow: beams (columns) whose lower two thirds inside the fan are mostly dark
    cols = np.nonzero(fan.sum(0) > 10)[0]
    shadowed = 0
    for c in cols:
        rows = np.nonzero(fan[:, c])[0]
        deep = rows[len(rows) // 3:]
        if deep.size and np.mean(smooth[deep, c] <= dark_grey) > 0.6:
            shadowed += 1
    shadow = shadowed / max(1, len(cols))
    tw = THUMB_WIDTH_PX
    tsize = (tw, max(1, round(h * tw / w)))
    thumb = cv2.GaussianBlur(cv2.resize(grey, tsize, interpolation=cv2.INTER_AREA).astype(np.float32), (0, 0), 1.0)
    tfan = cv2.resize(fan.astype(np.uint8), tsize, interpolation=cv2.INTER_NEAREST) > 0
    return FrameQuality(coverage, sharp, float(shadow), thumbnail=thumb, thumbnail_fan=tfan)


def _typicality(qualities: list[FrameQuality], slack: float = 1.5) -> list[float]:
    """Per frame ``1 / (1 + max(0, d / median(d) - slack))`` where ``d`` is the mean absolute
    grey difference (inside the fan) between the frame's thumbnail and the clip's per-pixel
    median thumbnail; 1.0 for all when thumbnails are missing or differ in size."""
    thumbs = [q.thumbnail for q in qualities]
    if len(thumbs) < 3 or any(t is None or t.shape != thumbs[0].shape for t in thumbs):
        return [1.0] * len(qualities)
    stack = np.stack(thumbs)
    fan = qualities[0].thumbnail_fan
    if fan is None or not fan.any():
        fan = np.ones(stack.shape[1:], bool)
    med = np.median(stack, axis=0)
    dev = np.abs(stack - med)[:, fan].mean(axis=1)
    ref = float(np.median(dev)) or 1e-6
    return [float(1.0 / (1.0 + max(0.0, d / ref - slack))) for d in dev]


def score_frames(qualities: list[FrameQuality]) -> list[float]:
    """Combine each frame's terms into one score; sharpness counts relative to the clip median
    (motion-blurred frames fall below it), typicality against the clip's median frame."""
    if not qualities:
        return []
    med = float(np.median([q.sharpness for q in qualities])) or 1.0
    typical = _typicality(qualities)
    scores = []
    for q, t in zip(qualities, typical):
        sharp_rel = min(1.0, q.sharpness / (1.5 * med))
        q.typicality = t
        q.score = float(q.coverage * (1.0 - q.shadow_fraction) * (0.5 + 0.5 * sharp_rel) * t)
        scores.append(q.score)
    return scores


def interval_keyframes(n_frames: int, interval: int) -> list[int]:
    """Every ``interval``-th frame index, starting at 0."""
    return list(range(0, n_frames, max(1, interval)))


def best_keyframes(scores: list[float], n_keep: int, min_gap: int = 1) -> list[int]:
    """Indices of the ``n_keep`` best-scored frames, at least ``min_gap`` apart, sorted."""
    order = np.argsort(-np.asarray(scores, float), kind="stable")
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= n_keep:
            break
        if all(abs(int(i) - c) >= min_gap for c in chosen):
            chosen.append(int(i))
    return sorted(chosen)


def select_keyframes(frames: list[Frame], mode: str = "quality", interval: int = 5,
                     n_keep: int | None = None) -> list[int]:
    """Indices of the frames of a clip to analyse.

    ``mode="interval"``: every ``interval``-th frame. ``mode="quality"``: as many frames as the
    interval would give (or ``n_keep``), chosen by quality score, at least ``interval // 2``
    frames apart. The fan is detected once per clip (frames of a clip share it).
    """
    n = len(frames)
    if n == 0:
        return []
    if mode == "interval":
        return interval_keyframes(n, interval)
    if mode != "quality":
        raise ValueError(f"unknown keyframe mode {mode!r} (quality | interval)")
    keep = n_keep if n_keep is not None else len(interval_keyframes(n, interval))
    fan = detect_fan(frames[0].pixels).mask
    quals = []
    for fr in frames:
        m = fan if fr.pixels.shape == fan.shape else None
        quals.append(frame_quality(fr.pixels, m))
    scores = score_frames(quals)
    return best_keyframes(scores, keep, max(1, interval // 2))
