"""Fan (imaged sector) detection: the region of the frame that carries echo data.

Everything outside the fan is background (black, or annotations). The detector works on a
downsampled copy for speed and returns the fan as a polygon and a mask in ORIGINAL pixels.

Method (hand-written because no library detects ultrasound sectors): echo data is speckle, so
the fan is where a smoothed image is above a low grey floor; thin bright annotations are
removed by a morphological opening, gaps (anechoic cysts, vessels, acoustic shadows) are closed
and holes filled, and the largest component is kept. Its outline is regularised with the
convex hull restricted to rows/columns that the raw component supports (a curved probe's fan has
a concave top arc that a plain hull would overfill).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from livus.io.dataset import polygon_mask


@dataclass
class FanParams:
    """Tuning of :func:`detect_fan` (grey levels 0–255, sizes in original pixels unless noted)."""

    work_width_px: int = 256  # detection runs on a copy this wide
    floor_grey: float = 6.0  # smoothed grey above this counts as echo (added to the background level)
    open_px: float = 9.0  # opening removes structures thinner than this (text, lines)
    close_px: float = 31.0  # closing bridges dark gaps inside the fan narrower than this
    polygon_epsilon_px: float = 1.5  # polygon simplification tolerance


@dataclass
class FanResult:
    """A detected fan: polygon and mask in original pixels."""

    polygon_px: list[list[float]]
    mask: np.ndarray  # uint8 0/1, original size
    box_xyxy: tuple[float, float, float, float]
    area_fraction: float
    warnings: list[str] = field(default_factory=list)


def _disk(diameter_px: float) -> np.ndarray:
    d = max(1, int(round(diameter_px)))
    if d % 2 == 0:
        d += 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes of a 0/1 mask (flood the background from the border)."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    ff_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    out = mask.copy()
    out[holes] = 1
    return out


def _largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == k).astype(np.uint8)


def fan_mask_small(grey_small: np.ndarray, params: FanParams, px_per_orig: float) -> np.ndarray:
    """Fan mask (0/1) of a downsampled grey image; ``px_per_orig`` = small / original scale."""
    blur = cv2.GaussianBlur(grey_small, (0, 0), 1.0)
    background = float(np.percentile(blur, 2))
    raw = (blur > background + params.floor_grey).astype(np.uint8)
    opened = cv2.morphologyEx(raw, cv2.MORPH_OPEN, _disk(params.open_px * px_per_orig))
    big = _largest_component(opened)
    if not big.any():
        return big
    # close with a border so the closing does not shrink at the image edge
    pad = int(round(params.close_px * px_per_orig)) + 2
    padded = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, _disk(params.close_px * px_per_orig))
    closed = closed[pad:-pad, pad:-pad]
    return _fill_holes(_largest_component(closed))


def detect_fan(grey: np.ndarray, params: FanParams | None = None) -> FanResult:
    """Detect the fan of a grey ``uint8`` frame; polygon and mask in original pixels."""
    params = params or FanParams()
    if grey.ndim != 2:
        raise ValueError("detect_fan expects a 2-D grey image")
    h, w = grey.shape
    k = min(1.0, params.work_width_px / w)
    small = cv2.resize(grey, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA) if k < 1 else grey
    kx, ky = small.shape[1] / w, small.shape[0] / h
    m_small = fan_mask_small(small, params, kx)
    warnings: list[str] = []
    if not m_small.any():
        warnings.append("no fan found: using the whole image")
        poly = [[0.0, 0.0], [w - 1.0, 0.0], [w - 1.0, h - 1.0], [0.0, h - 1.0]]
    else:
        contours, _ = cv2.findContours(m_small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        c = max(contours, key=cv2.contourArea)
        c = cv2.approxPolyDP(c, params.polygon_epsilon_px * kx, True).reshape(-1, 2).astype(np.float64)
        # small-pixel centres → original-pixel centres (half-pixel convention); contour pixels
        # are the outermost fan pixels, so push the outline out by half a small pixel.
        poly_arr = np.empty_like(c)
        poly_arr[:, 0] = (c[:, 0] + 0.5) / kx - 0.5
        poly_arr[:, 1] = (c[:, 1] + 0.5) / ky - 0.5
        poly_arr[:, 0] = np.clip(poly_arr[:, 0], 0, w - 1)
        poly_arr[:, 1] = np.clip(poly_arr[:, 1], 0, h - 1)
        poly = poly_arr.tolist()
    return fan_result_from_polygon(poly, w, h, warnings)


def fan_result_from_polygon(
    polygon_px: list[list[float]], width: int, height: int, warnings: list[str] | None = None
) -> FanResult:
    """Build a :class:`FanResult` (mask, box, area share) from a polygon in original pixels."""
    mask = polygon_mask(polygon_px, width, height)
    arr = np.asarray(polygon_px, dtype=np.float64)
    box = (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max()))
    return FanResult(
        polygon_px=[[float(x), float(y)] for x, y in arr],
        mask=mask,
        box_xyxy=box,
        area_fraction=float(mask.mean()),
        warnings=list(warnings or []),
    )


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two 0/1 masks (1.0 when both are empty)."""
    a, b = a > 0, b > 0
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


class FanCache:
    """Reuses the fan of a clip/device while the frame size stays the same.

    Key: ``(device or clip key, width, height)``. A new size or key detects the fan again.
    """

    def __init__(self, params: FanParams | None = None) -> None:
        self.params = params or FanParams()
        self._store: dict[tuple[str, int, int], FanResult] = {}
        self._aux: dict[tuple[str, str, int, int], Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, grey: np.ndarray, key: str = "") -> FanResult:
        h, w = grey.shape[:2]
        k = (key, w, h)
        fan = self._store.get(k)
        if fan is None:
            self.misses += 1
            fan = detect_fan(grey, self.params)
            self._store[k] = fan
        else:
            self.hits += 1
        return fan

    def aux(self, name: str, grey: np.ndarray, key: str, compute: Callable[[], Any]) -> Any:
        """Cache any other per-device result (ruler, model-space fan mask) next to the fan."""
        h, w = grey.shape[:2]
        k = (name, key, w, h)
        if k not in self._aux:
            self._aux[k] = compute()
        return self._aux[k]

    def clear(self) -> None:
        self._store.clear()
        self._aux.clear()
