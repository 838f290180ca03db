"""ClassifierEnsemble: weighted probability averaging, weight choice, drop-in use, spec round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livus.config import ClassifierConfig
from livus.models.classifier import LesionClassifier, classify_lesions, load_classifier, save_classifier
from livus.models.ensemble import (
    ClassifierEnsemble, choose_weights, fuse, load_ensemble, log_loss, save_ensemble, simplex_grid,
)
from livus.types import Lesion
from livus.vocab import FEATURE_NAMES


def _member(widths: tuple[int, ...], seed: int, temperature: float, **kw) -> LesionClassifier:
    torch.manual_seed(seed)
    m = LesionClassifier(ClassifierConfig(encoder="resnet_lite", crop_size_px=48, widths=widths, **kw)).eval()
    with torch.no_grad():  # a non-trivial malignancy head so members disagree
        m.malignancy_head.bias.fill_(0.3 * seed - 0.2)
    m.temperature.fill_(temperature)
    return m


def _lesions() -> tuple[np.ndarray, list[Lesion]]:
    rng = np.random.default_rng(1)
    image = (rng.random((200, 260)) * 255).astype(np.uint8)
    return image, [Lesion(0, 0.9, (80.0, 90.0), 50.0, 30.0, 15.0), Lesion(1, 0.8, (180.0, 120.0), 40.0, 36.0, -30.0)]


def test_simplex_grid_sums_to_one():
    g = simplex_grid(3, 0.25)
    assert np.allclose(g.sum(1), 1.0) and (g >= 0).all()
    assert len(g) == 15  # C(4 + 2, 2)


def test_choose_weights_favours_the_better_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400).astype(float)
    good = np.clip(0.5 + 0.35 * (2 * y - 1) + rng.normal(0, 0.1, 400), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 400)
    for crit in ("log_loss", "auc"):
        w = choose_weights(np.stack([noise, good], 1), y, crit)
        assert w.sum() == pytest.approx(1.0)
        assert w[1] > 0.7, (crit, w)
    w = choose_weights(np.stack([noise, good], 1), y)
    assert log_loss(y, fuse(np.stack([noise, good], 1), w)) <= log_loss(y, good) + 1e-9


def test_equal_members_get_equal_weights():
    y = np.array([0, 1, 0, 1, 1.0])
    p = np.array([0.2, 0.8, 0.3, 0.6, 0.9])
    assert np.allclose(choose_weights(np.stack([p, p], 1), y), [0.5, 0.5])


def test_output_is_weighted_average_of_calibrated_members():
    a, b = _member((8, 16, 32), 0, 1.5), _member((12, 24, 48), 1, 0.7, blocks_per_stage=2)
    ens = ClassifierEnsemble([a, b], [3.0, 1.0]).eval()
    assert float(ens.weights.sum()) == pytest.approx(1.0) and np.allclose(ens.weights.numpy(), [0.75, 0.25])
    image, lesions = _lesions()
    pa, pb, pe = (classify_lesions(m, image, lesions) for m in (a, b, ens))  # drop-in for classify_lesions
    for i in range(len(lesions)):
        want = 0.75 * pa[i]["malignancy"] + 0.25 * pb[i]["malignancy"]
        assert pe[i]["malignancy"] == pytest.approx(want, abs=1e-5)
        assert pa[i]["malignancy"] != pytest.approx(pb[i]["malignancy"], abs=1e-3)
        for n in FEATURE_NAMES:
            assert pe[i]["features"][n] == pytest.approx(0.75 * pa[i]["features"][n] + 0.25 * pb[i]["features"][n], abs=1e-5)


def test_feature_heads_of_untrained_members_are_left_out():
    a, b = _member((8, 16, 32), 0, 1.0), _member((8, 16, 32), 2, 1.0)
    a.meta = {"trained_features": list(FEATURE_NAMES)}
    b.meta = {"trained_features": []}
    ens = ClassifierEnsemble([a, b]).eval()
    image, lesions = _lesions()
    pa, pe = classify_lesions(a, image, lesions), classify_lesions(ens, image, lesions)
    assert pe[0]["features"]["halo"] == pytest.approx(pa[0]["features"]["halo"], abs=1e-5)
    assert sorted(ens.meta["trained_features"]) == sorted(FEATURE_NAMES)


def test_members_must_share_the_crop_rule():
    with pytest.raises(ValueError):
        ClassifierEnsemble([_member((8, 16, 32), 0, 1.0), _member((8, 16, 32), 1, 1.0, margin=1.0)])
    with pytest.raises(ValueError):
        ClassifierEnsemble([_member((8, 16, 32), 0, 1.0)], [-1.0])


def test_spec_round_trip(tmp_path):
    a, b = _member((8, 16, 32), 0, 1.3), _member((12, 24, 48), 1, 0.8)
    save_classifier(a, tmp_path / "classifier.pt", {"trained_features": []})
    save_classifier(b, tmp_path / "classifier_wide.pt", {"trained_features": []})
    spec = save_ensemble(tmp_path / "ensemble.json", [tmp_path / "classifier.pt", tmp_path / "classifier_wide.pt"],
                         [0.4, 0.6], threshold=0.42)
    assert '"classifier_wide.pt"' in spec.read_text()  # stored relative to the spec
    ens = load_ensemble(spec)
    assert not ens.training and float(ens.threshold) == pytest.approx(0.42) and np.allclose(ens.weights.numpy(), [0.4, 0.6])
    ref = ClassifierEnsemble([load_classifier(tmp_path / "classifier.pt"), load_classifier(tmp_path / "classifier_wide.pt")],
                             [0.4, 0.6]).eval()
    x, z = torch.rand(3, 2, 48, 48), torch.zeros(3)
    with torch.no_grad():
        assert torch.allclose(ens(x, z)["malignancy"], ref(x, z)["malignancy"], atol=1e-6)
    assert ens.cam_layer is ens.members[1].cam_layer  # Grad-CAM explains the heavier member
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "something else", "members": []}')
    with pytest.raises(ValueError):
        load_ensemble(bad)


def test_gradcam_accepts_the_ensemble():
    from livus.explain.gradcam import gradcam_lesion

    ens = ClassifierEnsemble([_member((8, 16, 32), 0, 1.0), _member((8, 16, 32), 1, 1.0)], [0.3, 0.7]).eval()
    image, lesions = _lesions()
    cam = gradcam_lesion(ens, image, lesions[0])
    assert cam.shape == image.shape and 0.0 <= cam.min() and cam.max() <= 1.0
    assert cam[:, 200:].max() == 0.0  # zero outside the first lesion's crop
