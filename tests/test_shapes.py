"""Shape maths in image pixels: outline polygon → mask, outline → oriented ellipse."""

import numpy as np
import pytest

from livus.shapes import ellipse_from_polygon, polygon_mask


def _circle(cx, cy, r, n=64):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1).tolist()


def test_ellipse_from_polygon_rotated_rectangle():
    a = np.radians(30)
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    c = np.array([50.0, 40.0])
    pts = [c + su * 20 * u + sv * 5 * v for su, sv in [(-1, -1), (1, -1), (1, 1), (-1, 1)]]
    cx, cy, long_, short, ang = ellipse_from_polygon([list(p) for p in pts])
    # the longest extent of a rectangle is its diagonal
    assert long_ == pytest.approx(np.hypot(40, 10), rel=1e-6)
    assert (cx, cy) == pytest.approx((50, 40), abs=1e-4)
    cx, cy, long_, short, ang = ellipse_from_polygon(_circle(10, 10, 5, 360))
    assert long_ == pytest.approx(10, rel=1e-3) and short == pytest.approx(10, rel=1e-2)


def test_ellipse_from_polygon_needs_three_points():
    with pytest.raises(ValueError):
        ellipse_from_polygon([[0, 0], [1, 1]])


def test_polygon_mask_fills_the_inside_only():
    mask = polygon_mask([[2, 3], [7, 3], [7, 5], [2, 5]], width=10, height=8)
    assert mask.shape == (8, 10) and mask.dtype == np.uint8
    assert mask[4, 4] == 1 and mask[0, 0] == 0 and mask[4, 9] == 0
    assert mask.sum() == 6 * 3  # x 2..7, y 3..5 (pixel centres on the outline are inside)
    assert polygon_mask(None, 4, 3).sum() == 0 and polygon_mask([[0, 0], [1, 1]], 4, 3).sum() == 0
