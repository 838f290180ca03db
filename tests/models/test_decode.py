"""Decoding: peak picking, soft-NMS, ellipse/box/orientation maths, outlines from masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livus.config import DetectorConfig
from livus.models.decode import (
    Detection,
    angle_to_orient,
    box_iou,
    cell_to_pixel,
    decode_detections,
    ellipse_polygon,
    liver_polygon,
    orient_to_angle,
    peak_candidates,
    pixel_to_cell,
    soft_nms,
)
from livus.types import ellipse_bbox

S = 64


def _outputs(peaks: list[tuple[int, int, float]], long_px: float = 12.0, short_px: float = 6.0, angle: float = 30.0) -> dict[str, torch.Tensor]:
    h = S // 4
    heat = torch.full((1, 1, h, h), -10.0)
    for r, c, p in peaks:
        heat[0, 0, r, c] = math.log(p / (1 - p))
    axes = torch.empty(1, 2, h, h)
    axes[:, 0], axes[:, 1] = math.log(long_px), math.log(short_px)
    c2, s2 = angle_to_orient(angle)
    orient = torch.empty(1, 2, h, h)
    orient[:, 0], orient[:, 1] = c2, s2
    offset = torch.full((1, 2, h, h), 0.25)
    lesion = torch.full((1, 1, S, S), -10.0)
    liver = torch.full((1, 1, S, S), -10.0)
    liver[..., 10:50, 5:40] = 10.0
    return {"heatmap": heat, "axes": axes, "orient": orient, "offset": offset, "lesion_mask": lesion, "liver_mask": liver}


def test_orientation_round_trip_and_symmetry() -> None:
    for a in (0.0, 15.0, 89.0, 90.0, 135.5, 179.0):
        assert orient_to_angle(*angle_to_orient(a)) == pytest.approx(a, abs=1e-9)
    assert angle_to_orient(10.0) == pytest.approx(angle_to_orient(190.0))


def test_cell_pixel_maps_are_inverse() -> None:
    assert cell_to_pixel(0.0) == 1.5  # centre of model pixels 0..3
    assert pixel_to_cell(cell_to_pixel(7.3)) == pytest.approx(7.3)


def test_ellipse_polygon_and_box_agree() -> None:
    poly = np.array(ellipse_polygon((50.0, 40.0), 30.0, 10.0, 60.0, n=720))
    box = ellipse_bbox((50.0, 40.0), 30.0, 10.0, 60.0)
    assert poly[:, 0].min() == pytest.approx(box[0], abs=0.05)
    assert poly[:, 1].max() == pytest.approx(box[3], abs=0.05)
    # axis-aligned special cases
    assert ellipse_bbox((0, 0), 20, 10, 0) == pytest.approx([-10, -5, 10, 5])
    assert ellipse_bbox((0, 0), 20, 10, 90) == pytest.approx([-5, -10, 5, 10])


def test_box_iou_hand_cases() -> None:
    a = np.array([[0, 0, 10, 10]])
    assert box_iou(a, np.array([[0, 0, 10, 10]]))[0, 0] == pytest.approx(1.0)
    assert box_iou(a, np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(50 / 150)
    assert box_iou(a, np.array([[20, 20, 30, 30]]))[0, 0] == 0.0


def test_soft_nms_decays_overlaps_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    order, scores = soft_nms(boxes, np.array([0.9, 0.8, 0.7]), sigma=0.5)
    assert order[0] == 0
    assert scores[list(order).index(2)] == pytest.approx(0.7)  # far box untouched
    iou = 90 / 110
    assert scores[list(order).index(1)] == pytest.approx(0.8 * math.exp(-iou**2 / 0.5))


def test_peak_candidates_three_by_three() -> None:
    hm = torch.zeros(8, 8)
    hm[2, 2], hm[2, 3], hm[6, 6] = 0.9, 0.5, 0.6  # (2,3) is next to a higher value: not a peak
    assert peak_candidates(hm, 0.1, 10) == [(pytest.approx(0.9), 2, 2), (pytest.approx(0.6), 6, 6)]


def test_decode_hand_made_heatmap() -> None:
    cfg = DetectorConfig(input_size_px=S, score_threshold=0.3, decode_mode="heatmap")
    out = _outputs([(4, 5, 0.9), (12, 12, 0.2), (10, 2, 0.7)])
    dets = decode_detections(out, cfg)[0]
    assert len(dets) == 2  # 0.2 is below the threshold
    d = dets[0]
    assert d.score == pytest.approx(0.9, abs=1e-4)
    assert d.center_px == pytest.approx((cell_to_pixel(5.25), cell_to_pixel(4.25)))
    assert (d.long_axis_px, d.short_axis_px, d.angle_deg) == pytest.approx((12.0, 6.0, 30.0), abs=1e-3)
    assert len(d.polygon_px) >= 8  # empty lesion mask → ellipse outline
    # the valid mask removes the detection outside the fan
    valid = torch.ones(1, 1, S, S)
    valid[..., :, :16] = 0
    assert [x.score for x in decode_detections(out, cfg, valid_mask=valid)[0]] == pytest.approx([0.9], abs=1e-4)


def test_polygon_comes_from_the_lesion_mask() -> None:
    cfg = DetectorConfig(input_size_px=S, score_threshold=0.3, decode_mode="heatmap")
    out = _outputs([(4, 5, 0.9)])
    cx, cy = cell_to_pixel(5.25), cell_to_pixel(4.25)
    out["lesion_mask"][0, 0, int(cy) - 3 : int(cy) + 4, int(cx) - 2 : int(cx) + 3] = 10.0  # 5×7 blob
    d = decode_detections(out, cfg)[0][0]
    p = np.array(d.polygon_px)
    assert p[:, 0].max() - p[:, 0].min() == pytest.approx(4.0)
    assert p[:, 1].max() - p[:, 1].min() == pytest.approx(6.0)


def test_mask_components_decode() -> None:
    cfg = DetectorConfig(input_size_px=S, score_threshold=0.5, decode_mode="mask")
    out = _outputs([])
    out["lesion_mask"][:] = -10.0
    out["lesion_mask"][0, 0, 10:17, 20:25] = 3.0  # 5×7 blob, p = 0.95
    out["lesion_mask"][0, 0, 30:40, 30:32] = 0.0  # p = 0.5 ≥ component threshold, peak at the score threshold
    out["lesion_mask"][0, 0, 2, 2] = 3.0  # one pixel: noise
    dets = decode_detections(out, cfg)[0]
    assert [round(d.score, 2) for d in dets] == [0.95, 0.5]
    d = dets[0]
    assert d.center_px == pytest.approx((22.0, 13.0))
    assert d.long_axis_px == pytest.approx(np.hypot(4, 6) + 1.0)
    p = np.array(d.polygon_px)
    assert (p[:, 0].min(), p[:, 0].max(), p[:, 1].min(), p[:, 1].max()) == (20, 24, 10, 16)
    valid = torch.ones(1, 1, S, S)
    valid[..., :, :28] = 0  # the fan excludes the first blob
    assert [round(d.score, 2) for d in decode_detections(out, cfg, valid_mask=valid)[0]] == [0.5]
    with pytest.raises(ValueError):
        decode_detections(out, DetectorConfig(input_size_px=S, decode_mode="peaks"))


def test_liver_polygon() -> None:
    out = _outputs([])
    p = np.array(liver_polygon(out, 0))
    assert (p[:, 0].min(), p[:, 0].max(), p[:, 1].min(), p[:, 1].max()) == (5, 39, 10, 49)
    out["liver_mask"][:] = -10.0
    assert liver_polygon(out, 0) is None


def test_detection_box() -> None:
    d = Detection((10.0, 10.0), 20.0, 10.0, 0.0, 0.5)
    assert d.bbox_px == pytest.approx([0, 5, 20, 15])
