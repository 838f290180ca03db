from __future__ import annotations

import numpy as np
import pytest

from livus.report.overlay import (
    OverlayStyle,
    axis_endpoints_px,
    draw_overlay,
    lesion_label_lines,
    place_label,
    write_overlay_png,
)
from report_factories import make_frame, make_result


def _near(rgb: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return (np.abs(rgb.astype(int) - np.array(colour)).max(axis=2) <= tol)


def test_overlay_shape_and_lesion_outline(frame_grey, frame_result, artifacts_dir):
    out = draw_overlay(frame_grey, frame_result, language="zh")
    assert out.shape == (240, 320, 3) and out.dtype == np.uint8
    style = OverlayStyle()
    yellow = _near(out, style.lesion_rgb)
    assert yellow[121:131, 133:144].any()  # outline at 45° below-right: (138.4, 125.6)
    # far from every drawing the pixel is still the grey input
    assert tuple(out[200, 160]) == (frame_grey[200, 160],) * 3
    write_overlay_png(artifacts_dir / "report_overlay_zh.png", out)


def test_overlay_axes_are_drawn(frame_grey, frame_result):
    out = draw_overlay(frame_grey, frame_result)
    long_ends, short_ends = axis_endpoints_px(frame_result.lesions[0])
    np.testing.assert_allclose(long_ends, [[94, 110], [146, 110]])
    np.testing.assert_allclose(short_ends, [[120, 88], [120, 132]])
    cyan = _near(out, OverlayStyle().long_axis_rgb)
    magenta = _near(out, OverlayStyle().short_axis_rgb)
    assert cyan[109:112, 100:140].sum() > 20
    assert magenta[95:125, 119:122].sum() > 20


def test_heatmap_makes_second_panel(frame_grey, frame_result, artifacts_dir):
    heat = np.zeros((60, 80), np.float32)
    heat[20:35, 22:38] = 1.0  # low-resolution map, resized to the image
    out = draw_overlay(frame_grey, frame_result, heatmap=heat, language="en")
    gap = OverlayStyle().panel_gap_px
    assert out.shape == (240, 320 * 2 + gap, 3)
    panel = out[:, 320 + gap:].astype(int)
    hot = panel[110, 120]  # heat 1 here → red dominates (jet colormap)
    assert hot[0] > hot[2] + 40 and hot[0] > hot[1] + 40
    cold = panel[200, 160]  # heat 0 → the plain grey image
    assert cold[0] == cold[1] == cold[2] == frame_grey[200, 160]
    write_overlay_png(artifacts_dir / "report_overlay_heatmap_en.png", out)


def test_no_spacing_shows_px_and_banner(frame_grey):
    result = make_result(spacing=None)
    lines = lesion_label_lines(result.lesions[0], 1, spacing_known=False, language="en")
    assert lines[2].endswith("px") and "52" in lines[2]
    out = draw_overlay(frame_grey, result, language="en")
    with_spacing = draw_overlay(frame_grey, make_result(), language="en")
    orange = _near(out, OverlayStyle().warning_rgb, tol=30)[:40, :]
    assert orange.sum() > 20
    assert _near(with_spacing, OverlayStyle().warning_rgb, tol=30)[:40, :].sum() < orange.sum() / 4


def test_label_text_for_missing_malignancy():
    result = make_result()
    zh = lesion_label_lines(result.lesions[1], 2, spacing_known=True, language="zh")
    en = lesion_label_lines(result.lesions[1], 2, spacing_known=True, language="en")
    assert zh[0].startswith("#2") and "未评估" in zh[1] and "—" in en[1]
    assert zh[2] == "7.5 × 4.5 mm"


def test_place_label_stays_inside_and_avoids_others():
    box = place_label((60, 30), (0, 0, 20, 20), occupied=[], image_wh=(100, 80), gap=3)
    assert box[0] >= 0 and box[1] >= 0 and box[2] <= 100 and box[3] <= 80
    blocker = (0.0, 23.0, 60.0, 53.0)  # the place below the target is taken
    box2 = place_label((60, 30), (0, 0, 20, 20), occupied=[blocker], image_wh=(100, 80), gap=3)
    overlap = max(0, min(box2[2], blocker[2]) - max(box2[0], blocker[0])) * max(
        0, min(box2[3], blocker[3]) - max(box2[1], blocker[1]))
    assert overlap < 60 * 30  # moved off the blocked place (clamped inside a tiny image)
    assert box2[0] >= 0 and box2[2] <= 100 and box2[3] <= 80


@pytest.mark.parametrize("size", [(64, 48), (1600, 1200)])
def test_labels_fit_any_image_size(size):
    w, h = size
    img = make_frame(w, h)
    result = make_result(w, h)
    for lesion in result.lesions:  # keep lesions inside the small image
        lesion.center_px = (min(lesion.center_px[0], w - 5), min(lesion.center_px[1], h - 5))
        lesion.polygon_px = []
    out = draw_overlay(img, result)
    assert out.shape == (h, w, 3)


def test_size_mismatch_is_an_error(frame_grey):
    with pytest.raises(ValueError, match="px"):
        draw_overlay(frame_grey[:100], make_result())


def test_overlay_png_is_lossless_and_smaller_than_opencv_default(tmp_path):
    """The overlay PNG settings (issue 17) change the file's bytes, never its pixels; on a
    speckled frame with a Grad-CAM panel the file is smaller than OpenCV's default encoding."""
    import cv2

    rng = np.random.default_rng(0)
    grey = cv2.GaussianBlur(rng.integers(0, 255, (240, 320), dtype=np.uint8), (0, 0), 1.2)
    heat = np.zeros((240, 320), np.float32)
    heat[80:160, 100:200] = np.linspace(0, 1, 100, dtype=np.float32)[None, :]
    rgb = draw_overlay(grey, make_result(), heatmap=heat)
    path = write_overlay_png(tmp_path / "ov.png", rgb)
    back = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, rgb)
    ok, default = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok and path.stat().st_size < len(default)


def test_heatmap_blend_on_the_heat_box_equals_the_whole_frame_blend():
    """The heat panel blends only the box of non-zero heat (issue 17); the pixels are those of
    blending the whole frame (zero heat has weight 0), NaN and negative heat count as 0."""
    import cv2

    from livus.report.overlay import heatmap_panel
    from livus.types import FrameResult

    rng = np.random.default_rng(1)
    grey = cv2.cvtColor(rng.integers(0, 256, (120, 160), dtype=np.uint8), cv2.COLOR_GRAY2RGB)
    heat = np.zeros((120, 160), np.float32)
    heat[40:90, 50:130] = rng.random((50, 80)) * 1.4 - 0.2
    heat[60, 70] = np.nan
    style, empty = OverlayStyle(), FrameResult("x", 0, (160, 120))
    clean = np.clip(np.nan_to_num(heat), 0.0, 1.0)
    colour = cv2.cvtColor(cv2.applyColorMap((clean * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    weight = (style.heatmap_max_alpha * np.sqrt(clean)).astype(np.float32)
    whole = cv2.blendLinear(colour, grey, weight, 1.0 - weight)
    got = heatmap_panel(grey, heat, empty, style, "en")
    title = heatmap_panel(grey, np.zeros_like(heat), empty, style, "en") != grey  # the title box
    assert title.any() and not title[40:].any()
    assert np.array_equal(got[~title], whole[~title])
    assert np.array_equal(got[40:], whole[40:])
