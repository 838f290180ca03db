"""Gradient reversal, domain head on the detector backbone, intensity adaptation."""

from __future__ import annotations

import numpy as np
import torch

from livus.train.adapt import (
    BackboneTap,
    DomainHead,
    GradientReversal,
    dann_lambda,
    grad_reverse,
    standardise_intensity,
    style_augment,
)


def test_gradient_reversal_flips_and_scales_the_gradient_only():
    x = torch.randn(5, requires_grad=True)
    w = torch.arange(5.0)
    y = GradientReversal.apply(x, 0.5)
    assert torch.equal(y, x)  # identity forward
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)
    x2 = torch.randn(5, requires_grad=True)
    (x2 * w).sum().backward()
    assert torch.allclose(x2.grad, w)  # without the reversal: plain gradient


def test_grad_reverse_in_a_graph_trains_features_against_the_domain_loss():
    torch.manual_seed(0)
    feat = torch.randn(8, 4, 3, 3, requires_grad=True)
    head = DomainHead(4, 2).eval()  # no dropout: the three passes must see the same network
    head.lambd = 1.0
    loss = torch.nn.functional.cross_entropy(head(feat), torch.tensor([0, 1] * 4))
    loss.backward()
    g_rev = feat.grad.clone()
    feat.grad = None
    head.lambd = 0.0
    torch.nn.functional.cross_entropy(head(feat), torch.tensor([0, 1] * 4)).backward()
    assert feat.grad.abs().sum() == 0  # lambda 0: no gradient reaches the features
    # same head without reversal gives the opposite gradient
    feat.grad = None
    z = feat.mean(dim=(2, 3))
    torch.nn.functional.cross_entropy(head.mlp(z), torch.tensor([0, 1] * 4)).backward()
    assert torch.allclose(g_rev, -feat.grad, atol=1e-6)
    assert grad_reverse(torch.ones(2), 2.0).tolist() == [1.0, 1.0]


def test_dann_lambda_schedule():
    assert dann_lambda(0.0) == 0.0
    assert 0.99 < dann_lambda(1.0) <= 1.0
    assert dann_lambda(0.2) < dann_lambda(0.5)


def test_backbone_tap_on_the_detector():
    from livus.config import DetectorConfig
    from livus.models.detector import LesionDetector

    cfg = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 24, 32), stem_channels=8, fpn_channels=16, head_channels=8)
    model = LesionDetector(cfg)
    tap = BackboneTap(model)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, 1, 64, 64))
    assert tap.features is not None and tap.features.shape[:2] == (2, 32)
    head = DomainHead(32, 3)
    assert head(tap.features).shape == (2, 3)
    tap.remove()


def test_standardise_intensity_removes_gain_differences():
    rng = np.random.default_rng(0)
    valid = np.zeros((64, 64), np.uint8)
    valid[8:56, 8:56] = 1
    base = rng.rayleigh(0.15, (64, 64)).astype(np.float32)
    dim, bright = np.clip(base * 0.6, 0, 1) * valid, np.clip(base * 1.5, 0, 1) * valid
    a, b = standardise_intensity(dim, valid), standardise_intensity(bright, valid)
    assert abs(np.median(a[valid > 0]) - np.median(b[valid > 0])) < 0.02
    assert abs(np.median(dim[valid > 0]) - np.median(bright[valid > 0])) > 0.1
    assert a[0, 0] == 0.0


def test_style_augment_keeps_range_and_outside():
    rng = np.random.default_rng(1)
    valid = np.zeros((32, 32), np.uint8)
    valid[4:28, 4:28] = 1
    img = rng.uniform(0, 1, (32, 32)).astype(np.float32) * valid
    out = style_augment(img, rng, valid)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    assert np.all(out[valid == 0] == 0)
    assert not np.allclose(out, img)


def test_style_set_and_standardised_cache():
    from livus.preprocess.geometry import full_image_letterbox
    from livus.train.adapt import StyleAugmentedSet, standardised_cache
    from livus.train.datasets import ModelSpaceCache

    rng = np.random.default_rng(0)
    n, s = 3, 32
    valid = np.zeros((n, s, s), np.uint8)
    valid[:, 4:28, 4:28] = 1
    images = (rng.uniform(0.2, 0.6, (n, s, s)) * valid).astype(np.float32)
    cache = ModelSpaceCache(images, np.zeros((n, s, s), np.uint8), valid.copy(), np.ones(n, bool), valid,
                            [full_image_letterbox(s, s, s)] * n, ["normal"] * n, ["a", "b", "c"])
    std = standardised_cache(cache)
    assert std.images.shape == images.shape and not np.allclose(std.images, images)
    assert np.allclose(cache.images, images)  # the original is untouched
    plain = StyleAugmentedSet(cache, p=0.0, augment=False)[0]["image"]
    styled = StyleAugmentedSet(cache, p=1.0, augment=False)[0]["image"]
    assert plain.shape == styled.shape == (1, s, s)
    assert torch.allclose(plain[0], torch.from_numpy(images[0]))
    assert not torch.allclose(plain, styled)
