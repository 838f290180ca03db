"""LesionClassifier: shapes, masked multi-task loss, checkpoint round trip, image label rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livus.config import ClassifierConfig
from livus.models.classifier import (
    LesionClassifier, classify_lesions, image_label, load_classifier, masked_multitask_loss, save_classifier,
    size_feature,
)
from livus.types import Lesion
from livus.vocab import FEATURE_NAMES


def _small_cfg() -> ClassifierConfig:
    return ClassifierConfig(encoder="resnet_lite", crop_size_px=48, widths=(8, 16, 32))


def test_output_shapes():
    model = LesionClassifier(_small_cfg())
    out = model(torch.rand(3, 2, 48, 48), torch.zeros(3))
    assert out["malignancy"].shape == (3,)
    assert out["features"].shape == (3, len(FEATURE_NAMES))


def test_masked_head_gets_no_gradient():
    torch.manual_seed(0)
    model = LesionClassifier(_small_cfg())
    out = model(torch.rand(4, 2, 48, 48), torch.zeros(4))
    mal = torch.tensor([1.0, 0.0, 1.0, 0.0])
    feats = torch.full((4, len(FEATURE_NAMES)), float("nan"))  # no feature label at all
    masked_multitask_loss(out, mal, feats)["total"].backward()
    assert model.feature_head.weight.grad is not None
    assert torch.count_nonzero(model.feature_head.weight.grad) == 0
    assert torch.count_nonzero(model.malignancy_head.weight.grad) > 0


def test_missing_labels_do_not_change_loss():
    logits = {"malignancy": torch.tensor([2.0, -1.0, 0.5]), "features": torch.zeros(3, len(FEATURE_NAMES))}
    feats = torch.full((3, len(FEATURE_NAMES)), float("nan"))
    full = masked_multitask_loss(logits, torch.tensor([1.0, 0.0, float("nan")]), feats)["malignancy"]
    two = masked_multitask_loss(
        {"malignancy": logits["malignancy"][:2], "features": logits["features"][:2]}, torch.tensor([1.0, 0.0]), feats[:2]
    )["malignancy"]
    assert torch.isclose(full, two)
    assert masked_multitask_loss(logits, torch.tensor([1.0, 0.0, 1.0]), feats)["features"] == 0


def test_save_load_round_trip(tmp_path):
    model = LesionClassifier(_small_cfg()).eval()
    model.temperature.fill_(1.7)
    x = torch.rand(2, 2, 48, 48)
    path = tmp_path / "c.pt"
    save_classifier(model, path, {"version": "t"})
    loaded = load_classifier(path)
    assert not loaded.training and loaded.cfg.widths == (8, 16, 32) and loaded.meta["version"] == "t"
    assert float(loaded.temperature) == pytest.approx(1.7, abs=1e-3)
    size = torch.tensor([0.5, -1.0])
    a, b = model(x, size)["malignancy"], loaded(x, size)["malignancy"]
    assert torch.allclose(a, b, atol=2e-2)  # float16 storage


def test_size_input_is_required_and_used():
    model = LesionClassifier(_small_cfg()).eval()
    x = torch.rand(2, 2, 48, 48)
    with pytest.raises(ValueError):
        model(x)
    with torch.no_grad():
        model.malignancy_head.weight[0, -1] = 1.0
        d = model(x, torch.ones(2))["malignancy"] - model(x, torch.zeros(2))["malignancy"]
    assert torch.allclose(d, torch.ones(2))
    assert size_feature(np.exp(5.0)) == pytest.approx(0.0, abs=1e-6)


def test_classify_lesions_api():
    model = LesionClassifier(_small_cfg()).eval()
    img = (np.random.default_rng(0).random((120, 160)) * 255).astype(np.uint8)
    les = [
        Lesion(1, 0.9, (50.0, 60.0), 30.0, 20.0, 10.0),
        Lesion(2, 0.5, (150.0, 10.0), 40.0, 30.0, 0.0, polygon_px=[[140, 0], [160, 5], [150, 25]]),  # at the border
    ]
    out = classify_lesions(model, img, les, None)
    assert len(out) == 2
    for r in out:
        assert 0.0 <= r["malignancy"] <= 1.0
        assert set(r["features"]) == set(FEATURE_NAMES)
    assert classify_lesions(model, img, [], None) == []


def test_image_label_rule():
    assert image_label([]) == {"normal": 1.0, "benign": 0.0, "malignant": 0.0}
    lab = image_label([(0.9, 0.2), (0.4, 0.95)])
    assert lab["normal"] == pytest.approx(0.1)
    assert lab["malignant"] == pytest.approx(0.38)
    assert lab["benign"] == pytest.approx(0.52)
    assert sum(lab.values()) == pytest.approx(1.0)


def test_mask_channel_from_detector_mask_and_feature_filter():
    from livus.models.classifier import lesion_crop

    cfg = _small_cfg()
    img = np.zeros((100, 100), np.uint8)
    det_mask = np.zeros((100, 100), np.uint8)
    det_mask[40:60, 45:55] = 1  # a narrow detected region inside the ellipse box
    les = Lesion(1, 0.9, (50.0, 50.0), 24.0, 24.0, 0.0)  # no polygon
    with_mask, _ = lesion_crop(cfg, img, les, det_mask)
    without, _ = lesion_crop(cfg, img, les, None)  # falls back to the filled ellipse
    assert 0 < with_mask[1].sum() < 0.7 * without[1].sum()
    model = LesionClassifier(cfg).eval()
    model.meta = {"trained_features": ["halo"]}
    assert list(classify_lesions(model, img, [les], det_mask)[0]["features"]) == ["halo"]
