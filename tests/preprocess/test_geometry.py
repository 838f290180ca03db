"""Letterbox geometry: exact round trips and pixel alignment of the resampled image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livus.preprocess.fan import mask_iou
from livus.preprocess.geometry import Letterbox, full_image_letterbox, letterbox_for
from livus.shapes import polygon_mask

coord = st.floats(min_value=-50, max_value=1500, allow_nan=False, allow_infinity=False)


@st.composite
def letterboxes(draw) -> Letterbox:
    x0 = draw(st.floats(min_value=-20, max_value=900))
    y0 = draw(st.floats(min_value=-20, max_value=700))
    w = draw(st.floats(min_value=1, max_value=1200))
    h = draw(st.floats(min_value=1, max_value=900))
    size = draw(st.sampled_from([64, 128, 256, 384, 511]))
    return letterbox_for((x0, y0, x0 + w, y0 + h), size)


@settings(max_examples=200, deadline=None)
@given(letterboxes(), st.lists(st.tuples(coord, coord), min_size=1, max_size=20))
def test_points_round_trip(lb: Letterbox, pts) -> None:
    p = np.array(pts, float)
    back = lb.points_to_original(lb.points_to_model(p))
    assert np.abs(back - p).max() < 0.5
    assert np.abs(back - p).max() < 1e-6  # in fact exact up to float rounding


@settings(max_examples=100, deadline=None)
@given(letterboxes(), coord, coord, st.floats(1, 400), st.floats(1, 400))
def test_boxes_round_trip(lb: Letterbox, x, y, bw, bh) -> None:
    box = np.array([[x, y, x + bw, y + bh]])
    m = lb.boxes_to_model(box)
    assert m[0, 2] >= m[0, 0] and m[0, 3] >= m[0, 1]
    assert np.abs(lb.boxes_to_original(m) - box).max() < 1e-6


@settings(max_examples=100, deadline=None)
@given(letterboxes(), coord, coord, st.floats(1, 400), st.floats(0, 1), st.floats(0, 179.9))
def test_ellipses_round_trip(lb: Letterbox, cx, cy, long, ratio, angle) -> None:
    e = np.array([[cx, cy, long, long * ratio, angle]])
    m = lb.ellipses_to_model(e)
    assert m[0, 4] == pytest.approx(angle)  # uniform scale keeps the angle
    assert m[0, 2] == pytest.approx(long * lb.scale)
    assert np.abs(lb.ellipses_to_original(m) - e).max() < 1e-6


@settings(max_examples=60, deadline=None)
@given(letterboxes(), st.lists(st.tuples(coord, coord), min_size=3, max_size=12))
def test_polygon_round_trip(lb: Letterbox, pts) -> None:
    back = np.array(lb.polygon_to_original(lb.polygon_to_model(pts)))
    assert np.abs(back - np.array(pts)).max() < 1e-6


def test_letterbox_layout() -> None:
    lb = letterbox_for((100, 50, 499, 249), 256)  # 400 × 200 pixels
    assert (lb.crop_w, lb.crop_h) == (400, 200)
    assert lb.scale == pytest.approx(256 / 400)
    assert lb.pad_x == 0 and lb.pad_y == pytest.approx(100 * lb.scale)
    # outer pixel edges of the crop map to the model's content edges
    edges = lb.points_to_model(np.array([[99.5, 49.5], [499.5, 249.5]]))
    np.testing.assert_allclose(edges, [[-0.5, 64 - 0.5], [255.5, 192 - 0.5]])


def test_image_content_aligns_with_point_map() -> None:
    """A bright dot in the original lands where points_to_model says (sub-pixel centroid)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        img = np.zeros((600, 800), np.uint8)
        cx, cy = rng.uniform(150, 650), rng.uniform(150, 450)
        cv2.circle(img, (int(round(cx * 16)), int(round(cy * 16))), 40 * 16, 255, -1, cv2.LINE_AA, shift=4)
        lb = letterbox_for((rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(700, 799), rng.uniform(500, 599)), 256)
        m = lb.image_to_model(img).astype(float)
        ys, xs = np.mgrid[: m.shape[0], : m.shape[1]]
        centroid = np.array([(m * xs).sum() / m.sum(), (m * ys).sum() / m.sum()])
        expected = lb.points_to_model(np.array([[cx, cy]]))[0]
        assert np.abs(centroid - expected).max() < 0.05


def test_image_to_model_pads_with_zero_and_keeps_dtype() -> None:
    img = np.full((100, 300), 200, np.uint8)
    lb = full_image_letterbox(300, 100, 150)
    m = lb.image_to_model(img)
    assert m.shape == (150, 150) and m.dtype == np.uint8
    assert m[:40].max() == 0 and m[-40:].max() == 0 and m[75, 75] == 200


@pytest.mark.parametrize("size", [128, 256, 384])
def test_mask_round_trip_iou(size: int) -> None:
    rng = np.random.default_rng(size)
    for _ in range(10):
        w, h = 1024, 768
        cx, cy = rng.uniform(200, 800), rng.uniform(200, 500)
        ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        r = rng.uniform(80, 200) * (1 + 0.2 * np.sin(3 * ang + rng.uniform(0, 6)))
        poly = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1)
        mask = polygon_mask(poly.tolist(), w, h)
        lb = letterbox_for((50, 30, 1000, 740), size)
        mm = lb.mask_to_model(mask)
        back = lb.mask_to_original(mm, (w, h))
        assert mask_iou(back, mask) > 0.95
        # a polygon drawn in model space maps back onto the original mask
        back_poly = polygon_mask(lb.polygon_to_original(lb.polygon_to_model(poly)), w, h)
        assert mask_iou(back_poly, mask) > 0.999


def test_label_mask_keeps_instances() -> None:
    mask = np.zeros((300, 400), np.uint8)
    mask[50:120, 50:150] = 1
    mask[150:250, 200:350] = 2
    lb = full_image_letterbox(400, 300, 128)
    back = lb.mask_to_original(lb.mask_to_model(mask), (400, 300))
    assert set(np.unique(back)) == {0, 1, 2}
    assert mask_iou(back == 2, mask == 2) > 0.95


def test_letterbox_rejects_empty_box() -> None:
    with pytest.raises(ValueError):
        letterbox_for((10, 10, 5, 20), 256)
