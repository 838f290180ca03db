"""Segmentation metrics (pure functions): Dice of binary masks and of polygon sets, in the
pixels of whichever image the polygons belong to."""

from __future__ import annotations

import numpy as np

from livus.shapes import polygon_mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two binary masks; 1.0 when both are empty."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    if s == 0:
        return 1.0
    return 2.0 * int((a & b).sum()) / s


def polygons_mask(polygons: list[list[list[float]]], width: int, height: int) -> np.ndarray:
    """Union of filled polygons as a bool ``height × width`` mask."""
    m = np.zeros((height, width), bool)
    for p in polygons:
        if p is not None and len(p) >= 3:
            m |= polygon_mask(p, width, height) > 0
    return m


def polygon_set_dice(
    pred_polygons: list[list[list[float]]], true_polygons: list[list[list[float]]], width: int, height: int
) -> float:
    """Dice of the union of predicted vs the union of true polygons (0 when nothing predicted
    but something is true)."""
    return dice(polygons_mask(pred_polygons, width, height), polygons_mask(true_polygons, width, height))
