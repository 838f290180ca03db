"""Segmentation metrics on hand-made masks and polygons."""

from __future__ import annotations

import numpy as np
import pytest

from livus.evaluate.segmentation import dice, polygon_set_dice


def test_dice_hand_cases() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    assert dice(a, b) == 1.0
    a[0:2, 0:5] = True  # 10 px
    assert dice(a, b) == 0.0
    b[0:2, 0:5] = True
    assert dice(a, b) == 1.0
    b[:] = False
    b[0:2, 0:10] = True  # 20 px, 10 shared
    assert dice(a, b) == pytest.approx(2 * 10 / 30)


def test_polygon_set_dice_union() -> None:
    sq = lambda x, y, s: [[x, y], [x + s, y], [x + s, y + s], [x, y + s]]  # noqa: E731
    assert polygon_set_dice([sq(0, 0, 9)], [sq(0, 0, 9)], 20, 20) == 1.0
    # two predicted halves union to the truth
    assert polygon_set_dice([sq(0, 0, 9), sq(10, 0, 9)], [sq(0, 0, 9), sq(10, 0, 9)], 20, 20) == 1.0
    assert polygon_set_dice([], [sq(0, 0, 9)], 20, 20) == 0.0
    assert 0.4 < polygon_set_dice([sq(0, 0, 9)], [sq(0, 0, 9), sq(10, 10, 9)], 20, 20) < 0.7
