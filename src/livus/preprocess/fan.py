"""Fan (imaged sector) detection: the region of the frame that carries echo data.

Everything outside the fan is background (black, or annotations). The detector works on a
downsampled copy for speed and returns the fan as a polygon and a mask in ORIGINAL pixels.

Method (hand-written because no library detects ultrasound sectors):

1. echo support: a lightly smoothed copy above a low grey floor, opened to drop thin bright
   annotations, largest component;
2. sector model: the left/right fan edges are RANSAC "envelope" lines fitted to the support's
   row extremes in the upper part of the fan (the near field reaches the edges; the far field is
   often dark at the sides), the apex is where they meet, near/far arcs are circles around the
   apex through the support's extreme radii. The model extends the fan into dark corners and
   shadowed regions that carry no echo;
3. fallback (linear probes, no apex above the image, or a model that misses > 3% of the echo):
   the convex hull of the support cut above the first echo row of each column (keeps the
   concave near-field arc of a curved probe).
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

    work_width_px: int = 512  # detection runs on a copy this wide
    floor_grey: float = 6.0  # smoothed grey above background + this counts as echo
    min_local_std: float = 0.0  # echo is speckled: local grey std above this (0 = off)
    std_window_px: int = 5  # window of that std (work pixels)
    open_px: float = 5.0
    min_piece_share: float = 0.1  # echo regions at least this share of the largest one join it  # opening (work pixels) removes structures thinner than this (text, lines)
    max_side_angle_gap_deg: float = 90.0  # sides more asymmetric than this: mirror the steeper side
    min_sector_cover: float = 0.97  # the sector model must hold this share of the echo pixels
    polygon_epsilon_px: float = 0.7  # polygon simplification tolerance (work pixels)


@dataclass
class FanResult:
    """A detected fan: polygon and mask in original pixels."""

    polygon_px: list[list[float]]
    mask: np.ndarray  # uint8 0/1, original size
    box_xyxy: tuple[float, float, float, float]
    area_fraction: float
    warnings: list[str] = field(default_factory=list)
    kind: str = "unknown"  # sector | hull | image


def _disk(diameter_px: float) -> np.ndarray:
    d = max(1, int(round(diameter_px)))
    if d % 2 == 0:
        d += 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == k).astype(np.uint8)


def echo_support(grey_small: np.ndarray, params: FanParams) -> np.ndarray:
    """Pixels (0/1) of the largest connected region carrying echo (above the black background)."""
    blur = cv2.GaussianBlur(grey_small, (0, 0), 1.0)
    background = float(np.percentile(blur, 1))
    raw = blur > background + params.floor_grey
    if params.min_local_std > 0:
        # flat grey frames that some scanners draw around the sector carry no speckle
        g = grey_small.astype(np.float32)
        k = (params.std_window_px, params.std_window_px)
        mean = cv2.boxFilter(g, -1, k)
        var = cv2.boxFilter(g * g, -1, k) - mean * mean
        raw &= var > params.min_local_std**2
    raw = raw.astype(np.uint8)
    opened = cv2.morphologyEx(raw, cv2.MORPH_OPEN, _disk(params.open_px))
    # the largest region plus big pieces split off by dark bands (near-field gaps, shadows)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n <= 1:
        return np.zeros_like(opened)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= params.min_piece_share * areas.max()
    return keep[labels].astype(np.uint8)


def _hull_mask(support: np.ndarray) -> np.ndarray:
    """Convex hull of the support, cut above the support's first row in each column (the concave
    near-field arc of a curved probe)."""
    hull = cv2.convexHull(cv2.findNonZero(support))
    m = np.zeros_like(support)
    cv2.fillConvexPoly(m, hull, 1)
    has = support.any(0)
    ytop = np.where(has, support.argmax(0), support.shape[0])
    m[np.arange(support.shape[0])[:, None] < ytop[None, :]] = 0
    return m


def _envelope_line(ys: np.ndarray, xs: np.ndarray, outward: float, tol: float, rng: np.random.Generator) -> tuple[np.ndarray, int] | None:
    """RANSAC line ``x = a*y + b`` through boundary points that the other points do not cross
    (``outward`` = -1 for the left edge, +1 for the right); returns (point, down direction)."""
    n = len(ys)
    if n < 10:
        return None
    best, best_score = None, -1
    for _ in range(200):
        i, j = rng.choice(n, 2, replace=False)
        if abs(ys[j] - ys[i]) < 5:
            continue
        a = (xs[j] - xs[i]) / (ys[j] - ys[i])
        b = xs[i] - a * ys[i]
        resid = (xs - (a * ys + b)) * outward  # > 0: point outside the line
        if np.mean(resid > tol) > 0.03:
            continue
        score = int(np.sum(np.abs(resid) <= tol))
        if score > best_score:
            best, best_score = (a, b), score
    if best is None:
        return None
    a, b = best
    inl = np.abs(xs - (a * ys + b)) <= tol
    a, b = np.polyfit(ys[inl], xs[inl], 1)
    u = np.array([a, 1.0]) / np.hypot(a, 1.0)
    y0 = float(np.median(ys[inl]))
    return np.array([[a * y0 + b, y0], u]), best_score


def _side_lines(support: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Left and right fan edges as ``[point, unit direction pointing down]``, fitted to the
    support's row extremes in the upper part of the fan (the near field reaches the edges; the
    far field is often dark at the sides). ``None`` when a side has no straight edge."""
    rows = np.nonzero(support.any(1))[0]
    if len(rows) < 20:
        return None
    y_top, y_bot = rows[0], rows[-1]
    band = rows[(rows >= y_top + 0.05 * (y_bot - y_top)) & (rows <= y_top + 0.4 * (y_bot - y_top))]
    sub = support[band]
    x_left = sub.argmax(1).astype(np.float64)
    x_right = (sub.shape[1] - 1 - sub[:, ::-1].argmax(1)).astype(np.float64)
    rng = np.random.default_rng(0)
    ys = band.astype(np.float64)
    left = _envelope_line(ys, x_left, -1.0, 1.5, rng)
    right = _envelope_line(ys, x_right, 1.0, 1.5, rng)
    if left is None or right is None:
        return None
    return left[0], right[0]


def _intersect(l1: np.ndarray, l2: np.ndarray) -> np.ndarray | None:
    (p, u), (q, v) = l1, l2
    den = u[0] * v[1] - u[1] * v[0]
    if abs(den) < 1e-6:
        return None
    t = ((q[0] - p[0]) * v[1] - (q[1] - p[1]) * v[0]) / den
    return p + t * u


def _sector_mask(support: np.ndarray, params: FanParams) -> np.ndarray | None:
    """Sector model fitted to the support: apex where the side edges meet, near/far arcs around
    the apex. Extends the fan into dark corners and shadowed sides that carry no echo."""
    lines = _side_lines(support)
    if lines is None:
        return None
    left, right = lines
    ang_l = np.degrees(np.arctan2(-left[1][0], left[1][1]))  # > 0: left edge leans left
    ang_r = np.degrees(np.arctan2(right[1][0], right[1][1]))
    if min(ang_l, ang_r) < 2.0:  # not a converging sector (linear probe): the hull is the fan
        return None
    ys, xs = np.nonzero(support)
    if abs(ang_l - ang_r) > params.max_side_angle_gap_deg:
        # one side is lost in shadow: mirror the wider side about the near-field centre column
        top = support.argmax(0)
        cols = np.nonzero(support.any(0))[0]
        near = cols[top[cols] <= top[cols].min() + 3 * params.open_px]
        axis_x = float(np.median(near))
        if ang_l > ang_r:
            right = np.array([[2 * axis_x - left[0][0], left[0][1]], [-left[1][0], left[1][1]]])
        else:
            left = np.array([[2 * axis_x - right[0][0], right[0][1]], [-right[1][0], right[1][1]]])
    apex = _intersect(left, right)
    if apex is None or apex[1] > ys.min() + 2:
        return None
    r = np.hypot(xs - apex[0], ys - apex[1])
    r0, r1 = float(np.percentile(r, 0.2)), float(np.percentile(r, 99.9))
    a_l = np.arctan2(left[1][0], left[1][1])
    a_r = np.arctan2(right[1][0], right[1][1])
    a = np.linspace(a_l, a_r, 96)
    outer = np.stack([apex[0] + r1 * np.sin(a), apex[1] + r1 * np.cos(a)], 1)
    inner = np.stack([apex[0] + r0 * np.sin(a[::-1]), apex[1] + r0 * np.cos(a[::-1])], 1)
    poly = np.concatenate([outer, inner])
    m = np.zeros_like(support)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    if m[support > 0].mean() < params.min_sector_cover:
        return None
    return m


def fan_mask_small(grey_small: np.ndarray, params: FanParams) -> tuple[np.ndarray, str]:
    """Fan mask (0/1) of a downsampled grey image and how it was found (sector | hull | none)."""
    support = echo_support(grey_small, params)
    if not support.any():
        return support, "none"
    sector = _sector_mask(support, params)
    if sector is not None:
        return sector, "sector"
    return _hull_mask(support), "hull"


def detect_fan(grey: np.ndarray, params: FanParams | None = None) -> FanResult:
    """Detect the fan of a grey ``uint8`` frame; polygon and mask in original pixels."""
    params = params or FanParams()
    if grey.ndim != 2:
        raise ValueError("detect_fan expects a 2-D grey image")
    h, w = grey.shape
    k = min(1.0, params.work_width_px / w)
    small = cv2.resize(grey, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA) if k < 1 else grey
    kx, ky = small.shape[1] / w, small.shape[0] / h
    m_small, kind = fan_mask_small(small, params)
    warnings: list[str] = []
    if not m_small.any():
        warnings.append("no fan found: using the whole image")
        poly = [[0.0, 0.0], [w - 1.0, 0.0], [w - 1.0, h - 1.0], [0.0, h - 1.0]]
        kind = "image"
    else:
        contours, _ = cv2.findContours(m_small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        c = max(contours, key=cv2.contourArea)
        c = cv2.approxPolyDP(c, params.polygon_epsilon_px, True).reshape(-1, 2).astype(np.float64)
        # small-pixel centres → original-pixel centres (half-pixel convention)
        poly_arr = np.empty_like(c)
        poly_arr[:, 0] = np.clip((c[:, 0] + 0.5) / kx - 0.5, 0, w - 1)
        poly_arr[:, 1] = np.clip((c[:, 1] + 0.5) / ky - 0.5, 0, h - 1)
        poly = poly_arr.tolist()
    fan = fan_result_from_polygon(poly, w, h, warnings)
    fan.kind = kind
    return fan


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
