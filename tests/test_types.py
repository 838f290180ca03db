import json
import math

import numpy as np
import pytest

from livus.types import Frame, FrameResult, Lesion, ellipse_axes_mm, ellipse_bbox


def test_frame_rejects_colour_and_float():
    with pytest.raises(ValueError):
        Frame(np.zeros((4, 4, 3), np.uint8), source="x")
    with pytest.raises(ValueError):
        Frame(np.zeros((4, 4), np.float32), source="x")
    f = Frame(np.zeros((3, 5), np.uint8), source="x")
    assert f.size_px == (5, 3)


def test_ellipse_bbox_axis_aligned_and_rotated():
    assert ellipse_bbox((10, 20), 8, 4, 0) == pytest.approx([6, 18, 14, 22])
    assert ellipse_bbox((10, 20), 8, 4, 90) == pytest.approx([8, 16, 12, 24])
    x0, y0, x1, y1 = ellipse_bbox((0, 0), 10, 10, 33)
    assert (x1 - x0, y1 - y0) == pytest.approx((10, 10))


def test_axes_mm_anisotropic():
    long_mm, short_mm = ellipse_axes_mm(10, 4, 0, (0.5, 0.25))
    assert long_mm == pytest.approx(5.0)
    assert short_mm == pytest.approx(1.0)
    long_mm, _ = ellipse_axes_mm(10, 4, 90, (0.5, 0.25))
    assert long_mm == pytest.approx(2.5)
    assert ellipse_axes_mm(10, 4, 0, None) == (None, None)


def test_frame_result_json_roundtrip():
    les = Lesion(id=1, score=0.9, center_px=(100.5, 50.25), long_axis_px=30, short_axis_px=20,
                 angle_deg=30, polygon_px=[[90, 40], [110, 40], [110, 60]], malignancy=0.7,
                 features={"halo": 0.2})
    les.fill_mm((0.2, 0.2))
    assert les.long_axis_mm == pytest.approx(6.0)
    r = FrameResult(source="a.png", frame_index=0, image_size_px=(640, 480), pixel_spacing_mm=(0.2, 0.2),
                    lesions=[les], warnings=["w"])
    line = json.dumps(r.to_json_dict())
    d = json.loads(line)
    assert d["schema"] == "livus.result/1"
    assert d["lesions"][0]["bbox_px"][0] < 100.5
    back = FrameResult.from_json_dict(d)
    assert back.lesions[0].center_px == pytest.approx((100.5, 50.25))
    assert back.lesions[0].long_axis_mm == pytest.approx(6.0)
    assert math.isclose(back.pixel_spacing_mm[0], 0.2)
    with pytest.raises(ValueError):
        FrameResult.from_json_dict({"schema": "other"})
