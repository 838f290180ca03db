"""Detection metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from livus.evaluate.detection import (
    PredLesion,
    TrueLesion,
    froc_curve,
    is_hit,
    largest_extent,
    long_axis_errors,
    match_image,
    sensitivity_at_fp,
    sensitivity_by_size,
    threshold_at_fp,
)


def square(x0: float, y0: float, side: float) -> TrueLesion:
    return TrueLesion([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])


def pred(cx: float, cy: float, half: float, score: float, long_px: float = 0.0) -> PredLesion:
    return PredLesion((cx, cy), [cx - half, cy - half, cx + half, cy + half], score, long_px)


def test_hit_rules() -> None:
    les = square(0, 0, 10)
    assert is_hit(pred(5, 5, 1, 0.9), les)  # centre inside
    assert not is_hit(pred(30, 30, 2, 0.9), les)
    # centre outside the polygon but boxes overlap with IoU ≥ 0.3
    assert is_hit(PredLesion((11, 5), [2, 0, 12, 10], 0.9), les)
    assert not is_hit(PredLesion((11, 5), [9, 0, 19, 10], 0.9), les)


def test_largest_extent() -> None:
    assert largest_extent(square(0, 0, 3).polygon_px) == pytest.approx(3 * np.sqrt(2))


def test_match_greedy_and_duplicates_count_as_fp() -> None:
    m = match_image([pred(5, 5, 2, 0.5), pred(5, 6, 2, 0.9), pred(50, 50, 2, 0.7)], [square(0, 0, 10)])
    assert m.scores.tolist() == [0.9, 0.7, 0.5]
    assert m.hit.tolist() == [0, -1, -1]


def test_froc_hand_case() -> None:
    # image 1: lesion hit at 0.9, FP at 0.8; image 2 (normal): FP at 0.6; image 3: lesion hit at 0.4
    m1 = match_image([pred(5, 5, 2, 0.9), pred(50, 50, 2, 0.8)], [square(0, 0, 10)])
    m2 = match_image([pred(5, 5, 2, 0.6)], [])
    m3 = match_image([pred(5, 5, 2, 0.4)], [square(0, 0, 10)])
    fp, sens, thr = froc_curve([m1, m2, m3])
    assert fp.tolist() == pytest.approx([0, 0, 1 / 3, 2 / 3, 2 / 3])
    assert sens.tolist() == pytest.approx([0, 0.5, 0.5, 0.5, 1.0])
    s = sensitivity_at_fp([m1, m2, m3], (0.1, 0.25, 0.5, 1.0))
    assert s == pytest.approx({0.1: 0.5, 0.25: 0.5, 0.5: 0.5, 1.0: 1.0})
    assert threshold_at_fp([m1, m2, m3], 0.25) == 0.9
    assert threshold_at_fp([m1, m2, m3], 1.0) == 0.4
    assert thr[0] == np.inf


def test_sensitivity_by_size_and_long_axis_error() -> None:
    lesions = [square(0, 0, 30), square(100, 100, 80), square(300, 300, 200)]  # extents 42, 113, 283
    m = match_image([pred(15, 15, 5, 0.9, long_px=40.0), pred(400, 400, 20, 0.2, long_px=250.0)], lesions)
    by = sensitivity_by_size([m], [lesions], threshold=0.0)
    assert by == {"lt60": (1.0, 1), "60to150": (0.0, 1), "gt150": (1.0, 1)}
    assert sensitivity_by_size([m], [lesions], threshold=0.5)["gt150"] == (0.0, 1)
    errs = long_axis_errors([m], [lesions], threshold=0.0)
    assert sorted(errs.tolist()) == pytest.approx(sorted([abs(40 - 30 * np.sqrt(2)), abs(250 - 200 * np.sqrt(2))]))
