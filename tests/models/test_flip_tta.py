"""Mirror test-time augmentation of the detector (livus.models.flip_tta)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livus.config import DetectorConfig
from livus.models.decode import angle_to_orient, decode_detections, pixel_to_cell
from livus.models.detector import LesionDetector
from livus.models.flip_tta import average_with_mirror, mirror_back

S = 64
TINY = DetectorConfig(encoder="resnet_lite", input_size_px=S, widths=(8, 16, 24, 32), stem_channels=8, fpn_channels=16,
                      head_channels=8, tta_flip=True)


def _one_ellipse_outputs(x_px: float, y_px: float, angle_deg: float) -> dict[str, torch.Tensor]:
    """Head outputs (model pixels, heatmap decoding) of one 12 × 6 px ellipse centred at (x, y)."""
    w = S // 4
    cx, cy = pixel_to_cell(x_px), pixel_to_cell(y_px)
    c, r = int(round(cx)), int(round(cy))
    out = {"heatmap": torch.full((1, 1, w, w), -8.0), "axes": torch.zeros(1, 2, w, w), "orient": torch.zeros(1, 2, w, w),
           "offset": torch.zeros(1, 2, w, w), "lesion_mask": torch.full((1, 1, S, S), -8.0),
           "liver_mask": torch.zeros(1, 1, S, S), "image_logits": torch.tensor([[0.1, 0.5, -0.3]])}
    out["heatmap"][0, 0, r, c] = 4.0
    out["axes"][0, :, r, c] = torch.tensor([math.log(12.0), math.log(6.0)])
    out["orient"][0, :, r, c] = torch.tensor(angle_to_orient(angle_deg))
    out["offset"][0, :, r, c] = torch.tensor([cx - c, cy - r])
    return out


@pytest.mark.parametrize("angle", [20.0, 75.0, 130.0])
def test_mirrored_outputs_come_back_to_the_image_frame(angle: float) -> None:
    """An ellipse at (x, y, θ) is seen in the mirror image at (S − 1 − x, y, 180° − θ): mapped
    back, it decodes at (x, y, θ) again (centre, sub-pixel offset and angle)."""
    x, y = 21.3, 38.6
    mirrored = _one_ellipse_outputs(S - 1 - x, y, 180.0 - angle)
    back = {k: mirror_back(k, v) for k, v in mirrored.items()}
    cfg = DetectorConfig(input_size_px=S, decode_mode="heatmap", score_threshold=0.5)
    (det,) = decode_detections(back, cfg)[0]
    assert det.center_px == pytest.approx((x, y), abs=1e-4)
    assert (det.long_axis_px, det.short_axis_px) == pytest.approx((12.0, 6.0), abs=1e-3)
    assert det.angle_deg % 180 == pytest.approx(angle, abs=1e-3)
    # and the average with the image's own outputs keeps that one ellipse
    (fused,) = decode_detections(average_with_mirror(_one_ellipse_outputs(x, y, angle), mirrored), cfg)[0]
    assert fused.center_px == pytest.approx((x, y), abs=1e-4) and fused.angle_deg % 180 == pytest.approx(angle, abs=1e-3)


def test_probabilities_are_averaged_not_logits() -> None:
    a = {"lesion_mask": torch.full((1, 1, 4, 4), 10.0)}
    b = {"lesion_mask": torch.full((1, 1, 4, 4), -10.0)}
    p = torch.sigmoid(average_with_mirror(a, b)["lesion_mask"])
    assert torch.allclose(p, torch.full_like(p, 0.5), atol=1e-4)


def test_detector_averages_with_its_mirror_in_eval_mode_only() -> None:
    torch.manual_seed(0)
    model = LesionDetector(TINY)
    x = torch.rand(2, 1, S, S)
    model.eval()
    with torch.no_grad():
        out = model(x)
        single, mirrored = model._single(x), model._single(torch.flip(x, dims=[3]))
        expected = average_with_mirror(single, mirrored)
        for k in out:
            assert torch.allclose(out[k], expected[k], atol=1e-5), k
        # a mirror-symmetric image gives mirror-symmetric maps (one pass alone need not)
        sym = (x + torch.flip(x, dims=[3])) / 2
        heat = model(sym)["lesion_mask"]
        assert torch.allclose(heat, torch.flip(heat, dims=[3]), atol=1e-5)
        assert not torch.allclose(model._single(sym)["lesion_mask"], torch.flip(model._single(sym)["lesion_mask"], dims=[3]), atol=1e-5)
    model.train()
    out_train = model(x)
    assert set(out_train) >= {"aux_heatmap_s8"}  # training: one pass with the auxiliary heads
    assert np.isfinite(out_train["heatmap"].detach().numpy()).all()
