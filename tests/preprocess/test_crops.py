"""Crop rule and crop ↔ original mapping (livus.preprocess.crops)."""

from __future__ import annotations

import numpy as np
import pytest

from livus.preprocess.crops import (
    CropBox, crop_box_for_bbox, crop_matrix, crop_to_original, extract_crop, lesion_region_mask, warp_to_crop,
)


def _apply(m: np.ndarray, u: float, v: float) -> np.ndarray:
    return m @ np.array([u, v, 1.0])


def test_crop_box_rule_contains_lesion():
    box = crop_box_for_bbox([100, 50, 160, 70], margin=0.5)
    assert box.side_px == pytest.approx(60 * 2.0)
    x0, y0, x1, y1 = box.xyxy
    assert x0 <= 100 and y0 <= 50 and x1 >= 160 and y1 >= 70
    assert (box.cx_px, box.cy_px) == (130, 60)
    assert crop_box_for_bbox([10, 10, 14, 13], margin=0.5, min_side_px=32).side_px == 32


def test_matrix_maps_crop_edges_to_box_edges():
    box = CropBox(50.0, 40.0, 30.0)
    m = crop_matrix(box, 96)
    assert _apply(m, -0.5, -0.5) == pytest.approx([35.0, 25.0])
    assert _apply(m, 95.5, 95.5) == pytest.approx([65.0, 55.0])
    assert _apply(m, 47.5, 47.5) == pytest.approx([50.0, 40.0])
    # augmentation acts about the centre: the centre stays put under rotation/scale/flip
    ma = crop_matrix(box, 96, rotation_deg=30, scale=1.2, flip=True)
    assert _apply(ma, 47.5, 47.5) == pytest.approx([50.0, 40.0])
    assert np.sqrt(abs(np.linalg.det(ma[:, :2]))) == pytest.approx(30 / 96 / 1.2)


@pytest.mark.parametrize("side", [30.0, 400.0])  # up- and down-sampling (area-averaged path)
def test_bright_spot_lands_where_expected(side):
    img = np.zeros((600, 800), np.uint8)
    img[295:306, 395:406] = 255  # spot centred at (400, 300)
    box = CropBox(400.0 - side / 4, 300.0, side)  # spot a quarter side right of the crop centre
    m = crop_matrix(box, 96)
    crop = extract_crop(img, img > 0, m, 96)
    assert crop.shape == (2, 96, 96) and crop.dtype == np.float32
    vs, us = np.nonzero(crop[0] > 0.5 * crop[0].max())
    assert abs(us.mean() - (47.5 + 24)) <= 1.5 and abs(vs.mean() - 47.5) <= 1.5
    assert crop[1].max() > 0.2


def test_outside_image_is_zero_and_round_trip():
    img = np.full((100, 120), 200, np.uint8)
    box = CropBox(5.0, 5.0, 40.0)  # top-left quarter of the crop lies outside the image
    m = crop_matrix(box, 64)
    crop = warp_to_crop(img, m, 64)
    assert crop[:20, :20].max() == 0 and crop[40:, 40:].min() == 200
    heat = np.zeros((64, 64), np.float32)
    heat[28:36, 28:36] = 1.0  # around the crop centre (31.5, 31.5) ↔ original (5, 5)
    back = crop_to_original(heat, m, img.shape)
    assert back.shape == img.shape
    ys, xs = np.nonzero(back > 0.5)
    assert xs.mean() == pytest.approx(5.0, abs=1.0) and ys.mean() == pytest.approx(5.0, abs=1.0)
    assert back[40:, :].max() == 0 and back[:, 40:].max() == 0  # zero outside the crop


def test_augmented_round_trip_recovers_mask():
    mask = lesion_region_mask((200, 200), None, (100.0, 90.0, 60.0, 30.0, 20.0))
    box = crop_box_for_bbox([70, 75, 130, 105], margin=0.5)
    m = crop_matrix(box, 96, rotation_deg=12, scale=1.1, flip=True, shift_px=(4, -3))
    crop = extract_crop(np.zeros((200, 200), np.uint8), mask, m, 96)
    back = crop_to_original(crop[1], m, mask.shape) > 0.5
    inter = np.logical_and(back, mask > 0).sum()
    assert inter / np.logical_or(back, mask > 0).sum() > 0.9


def test_region_mask_polygon_and_ellipse():
    poly = lesion_region_mask((50, 50), [[10, 10], [30, 10], [30, 20], [10, 20]], None)
    assert poly.sum() == pytest.approx(21 * 11, rel=0.1)
    ell = lesion_region_mask((50, 50), [], (25.0, 25.0, 20.0, 10.0, 0.0))
    assert ell.sum() == pytest.approx(np.pi * 10.5 * 5.5, rel=0.1)  # boundary pixels included
    assert ell[25, 34] == 1 and ell[25, 37] == 0 and ell[31, 25] == 0
