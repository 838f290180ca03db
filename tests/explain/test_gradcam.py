"""Grad-CAM: highlights what drives the output, maps back onto the original image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from livus.config import ClassifierConfig
from livus.explain.gradcam import grad_cam, gradcam_lesion
from livus.models.classifier import LesionClassifier
from livus.types import Lesion


class BrightnessModel(nn.Module):
    """Toy classifier: malignancy = mean of ReLU(grey channel − 0.5); Grad-CAM ∝ bright pixels."""

    def __init__(self, crop_size_px: int = 48) -> None:
        super().__init__()
        self.cfg = ClassifierConfig(encoder="resnet_lite", crop_size_px=crop_size_px, use_size=False)
        self.conv = nn.Conv2d(2, 1, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0
            self.conv.bias.fill_(-0.5)
        self.cam_layer = nn.ReLU()

    def forward(self, x: torch.Tensor, size: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        a = self.cam_layer(self.conv(x))
        return {"malignancy": a.mean(dim=(1, 2, 3))}


def test_grad_cam_highlights_driving_region():
    torch.manual_seed(0)
    x = torch.zeros(1, 2, 32, 32)
    x[0, 0, 4:10, 20:28] = 1.0  # the only region above the threshold
    x[0, 0, 20:30, 2:12] = 0.4  # visible but does not drive the output
    model = BrightnessModel(32)
    cam = grad_cam(model, model.cam_layer, x, lambda out: out["malignancy"])[0]
    assert cam.shape == (32, 32) and cam.max() == pytest.approx(1.0)
    inside = cam[4:10, 20:28].sum()
    assert inside / cam.sum() > 0.8
    assert cam[20:30, 2:12].max() < 0.1


def test_gradcam_lesion_maps_back_to_original():
    img = np.full((200, 300), 60, np.uint8)
    img[95:106, 215:226] = 250  # bright spot at (220, 100), inside the lesion's crop
    lesion = Lesion(1, 0.9, (200.0, 100.0), 40.0, 30.0, 0.0)  # crop: box side 40 → 80 px around (200, 100)
    heat = gradcam_lesion(BrightnessModel(48), img, lesion)
    assert heat.shape == img.shape and 0.0 <= heat.min() and heat.max() <= 1.0
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert abs(x - 220) <= 3 and abs(y - 100) <= 3
    assert heat[:, :155].max() == 0 and heat[:, 245:].max() == 0  # zero outside the crop (160..240)


def test_gradcam_on_lesion_classifier():
    torch.manual_seed(0)
    model = LesionClassifier(ClassifierConfig(encoder="resnet_lite", crop_size_px=48, widths=(8, 16, 32))).eval()
    img = (np.random.default_rng(1).random((120, 160)) * 255).astype(np.uint8)
    heat = gradcam_lesion(model, img, Lesion(1, 0.8, (80.0, 60.0), 30.0, 20.0, 30.0))
    assert heat.shape == img.shape and np.isfinite(heat).all()
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    assert heat[:5].max() == 0  # rows far above the crop


def _reference_cam(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Grad-CAM the long way: full backward to the input, gradient caught by a tensor hook."""
    store: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    handle = model.cam_layer.register_forward_hook(hook)
    model(x.clone().requires_grad_(True))["malignancy"].sum().backward()
    handle.remove()
    weights = store["grad"].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * store["act"]).sum(dim=1, keepdim=True)).detach()
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return (cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]).numpy()


def test_grad_cam_equals_full_backward_and_leaves_no_parameter_gradients():
    """Only ∂score/∂A is computed (issue 17): the same map as a full backward, no ``.grad`` left
    on the parameters, and the model's mode kept (eval stays eval, train is restored)."""
    torch.manual_seed(0)
    cfg = ClassifierConfig(encoder="resnet_lite", crop_size_px=48, widths=(8, 16, 32), use_size=False)
    model = LesionClassifier(cfg).eval()
    x = torch.rand(2, 2, 48, 48)
    cam = grad_cam(model, model.cam_layer, x, lambda out: out["malignancy"])
    assert all(p.grad is None for p in model.parameters())
    assert not any(m.training for m in model.modules())
    np.testing.assert_array_equal(cam, _reference_cam(model, x))
    model.train()
    grad_cam(model, model.cam_layer, x, lambda out: out["malignancy"])
    assert all(m.training for m in model.modules())
