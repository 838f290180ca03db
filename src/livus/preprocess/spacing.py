"""Pixel size (mm per pixel): from DICOM when the frame carries it, else from depth-ruler ticks.

Depth ruler (convention shared with ``livus.simulate``; real scanners vary): a vertical column
of short bright horizontal tick marks just outside (or at the edge of) the fan, one tick per
10 mm of depth. The tick pitch in pixels gives ``mm_per_px = tick_mm / pitch_px``. No value is
invented: without a ruler the spacing is ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

UNKNOWN_SPACING_WARNING = "pixel spacing unknown: sizes in pixels only"


@dataclass
class RulerParams:
    """Tuning of :func:`estimate_spacing_from_ruler`."""

    tick_mm: float = 10.0
    bright_grey: int = 180  # tick pixels are at least this bright
    min_tick_len_px: int = 3
    max_tick_len_px: int = 16
    max_tick_thickness_px: int = 4
    min_ticks: int = 4
    max_pitch_cv: float = 0.08  # spacing between ticks must be regular (coefficient of variation)
    column_tolerance_px: int = 3
    max_fan_gap_px: float = 20.0  # the tick column's inner end lies within this of the fan's side
    border_px: float = 12.0  # ... or within this of the image border
    min_span_share: float = 0.3  # the ticks span at least this share of the fan's height
    depth_range_mm: tuple[float, float] = (20.0, 450.0)  # plausible imaged depth (fan height)


@dataclass
class RulerEstimate:
    """Ruler found in the image: ``mm_per_px`` and where its ticks are (original pixels)."""

    mm_per_px: float
    pitch_px: float
    tick_centres_px: list[tuple[float, float]]
    mask: np.ndarray  # uint8 0/1, the ruler tick pixels


def _candidate_ticks(grey: np.ndarray, params: RulerParams) -> list[tuple[float, float, int, int, int]]:
    """Short, thin, bright, horizontal blobs: ``(cx, cy, x0, width, label)``."""
    bright = (grey >= params.bright_grey).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(bright, connectivity=8)
    out = []
    for k in range(1, n):
        x, y, w, h, area = stats[k]
        if params.min_tick_len_px <= w <= params.max_tick_len_px and h <= params.max_tick_thickness_px and w >= h:
            out.append((float(cents[k][0]), float(cents[k][1]), int(x), int(w), k))
    return out


def _regular_pitch(ys: np.ndarray, params: RulerParams) -> float | None:
    """Tick pitch (px) of sorted y positions when they form a regular ladder, else ``None``.

    Tolerates a few missing ticks (a gap that is a near-integer multiple of the pitch)."""
    if len(ys) < params.min_ticks:
        return None
    d = np.diff(np.sort(ys))
    d = d[d > 1.0]
    if len(d) < params.min_ticks - 1:
        return None
    base = float(np.median(d))
    if base <= 2.0:
        return None
    mult = np.round(d / base)
    ok = (mult >= 1) & (np.abs(d / np.maximum(mult, 1) - base) <= params.max_pitch_cv * base * 2)
    if ok.sum() < params.min_ticks - 1:
        return None
    steps = d[ok] / mult[ok]
    pitch = float(np.sum(d[ok]) / np.sum(mult[ok]))
    if np.std(steps) / pitch > params.max_pitch_cv:
        return None
    return pitch


def _fan_extent(fan_mask: np.ndarray | None) -> tuple[float, float, float, float] | None:
    """``(x0, y0, x1, y1)`` of a fan mask (original pixels), or ``None``."""
    if fan_mask is None or not fan_mask.any():
        return None
    cols = np.nonzero(fan_mask.any(0))[0]
    rows = np.nonzero(fan_mask.any(1))[0]
    return float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])


def _plausible_ruler(members: list, pitch: float, fan_box: tuple[float, float, float, float], width: int,
                     params: RulerParams) -> bool:
    """A tick column next to the fan (or the image border), spanning a good share of the fan's
    height, whose pitch gives a plausible imaged depth."""
    fx0, fy0, fx1, fy1 = fan_box
    left_ends = np.array([m[2] for m in members], float)
    right_ends = np.array([m[2] + m[3] - 1 for m in members], float)
    gap = params.max_fan_gap_px
    beside_right = np.median(left_ends) >= fx1 - gap and np.median(left_ends) <= fx1 + gap
    beside_left = np.median(right_ends) <= fx0 + gap and np.median(right_ends) >= fx0 - gap
    at_border = np.median(left_ends) <= params.border_px or np.median(right_ends) >= width - 1 - params.border_px
    if not (beside_right or beside_left or at_border):
        return False
    fan_h = max(1.0, fy1 - fy0)
    ys = np.array([m[1] for m in members], float)
    if ys.max() - ys.min() < params.min_span_share * fan_h:
        return False
    depth_mm = fan_h * params.tick_mm / pitch
    return params.depth_range_mm[0] <= depth_mm <= params.depth_range_mm[1]


def _denser_ladder_around(members: list, ticks: list) -> bool:
    """True when many other ticks sit in the same column between the members: the members are
    only the long (major) ticks of a denser ruler, whose pitch they would overstate."""
    x0 = min(m[2] for m in members)
    x1 = max(m[2] + m[3] - 1 for m in members)
    y0, y1 = min(m[1] for m in members), max(m[1] for m in members)
    inside = sum(1 for t in ticks if y0 <= t[1] <= y1 and t[2] <= x1 and t[2] + t[3] - 1 >= x0)
    return inside > 1.5 * len(members)


def estimate_spacing_from_ruler(
    grey: np.ndarray, fan_mask: np.ndarray | None = None, params: RulerParams | None = None
) -> RulerEstimate | None:
    """Find a depth ruler (a column of regularly spaced bright horizontal ticks) and return the
    isotropic ``mm_per_px`` (depth axis; B-mode pixels are square), or ``None`` if there is none.

    Ticks inside the fan are ignored unless they sit within a few pixels of its border, so
    bright tissue echoes cannot fake a ruler. With a fan mask, a ruler must also sit next to the
    fan (its inner tick ends within ``max_fan_gap_px`` of the fan's side, or at the image border),
    span a good share of the fan's height and give a plausible imaged depth: a text block or a
    colour bar elsewhere is no ruler, and no spacing beats a wrong one.
    """
    params = params or RulerParams()
    ticks = _candidate_ticks(grey, params)
    if fan_mask is not None and ticks:
        inner = cv2.erode(fan_mask.astype(np.uint8), np.ones((9, 9), np.uint8))
        ticks = [t for t in ticks if not inner[int(round(t[1])), int(round(t[0]))]]
    if len(ticks) < params.min_ticks:
        return None
    # group ticks by column (x of their left or right end, whichever aligns the column)
    best: tuple[float, list] | None = None
    xs_left = np.array([t[2] for t in ticks], float)
    xs_right = np.array([t[2] + t[3] - 1 for t in ticks], float)
    fan_box = _fan_extent(fan_mask)
    for xs in (xs_left, xs_right):
        for x_ref in np.unique(np.round(xs)):
            members = [t for t, x in zip(ticks, xs) if abs(x - x_ref) <= params.column_tolerance_px]
            if len(members) < params.min_ticks:
                continue
            pitch = _regular_pitch(np.array([m[1] for m in members]), params)
            if pitch is None:
                continue
            if fan_box is not None and not _plausible_ruler(members, pitch, fan_box, grey.shape[1], params):
                continue
            if _denser_ladder_around(members, ticks):
                continue
            if best is None or len(members) > len(best[1]):
                best = (pitch, members)
    if best is None:
        return None
    pitch, members = best
    labels = cv2.connectedComponents((grey >= params.bright_grey).astype(np.uint8), connectivity=8)[1]
    mask = np.isin(labels, [m[4] for m in members]).astype(np.uint8)
    return RulerEstimate(
        mm_per_px=params.tick_mm / pitch,
        pitch_px=pitch,
        tick_centres_px=[(m[0], m[1]) for m in members],
        mask=mask,
    )


def resolve_spacing(
    dicom_spacing_mm: tuple[float, float] | None, ruler: RulerEstimate | None
) -> tuple[tuple[float, float] | None, str | None, list[str]]:
    """Pick the pixel spacing: DICOM wins, then the ruler, else ``None`` with a warning.

    Returns ``(spacing_mm or None, source "dicom" | "ruler" | None, warnings)``.
    """
    if dicom_spacing_mm is not None:
        return (float(dicom_spacing_mm[0]), float(dicom_spacing_mm[1])), "dicom", []
    if ruler is not None:
        return (ruler.mm_per_px, ruler.mm_per_px), "ruler", []
    return None, None, [UNKNOWN_SPACING_WARNING]
