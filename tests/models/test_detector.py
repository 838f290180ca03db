"""Detector network: shapes, checkpoint round trip, determinism, and that it can learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livus.config import DetectorConfig
from livus.models.detector import LesionDetector, load_detector, save_detector
from livus.models.losses import detector_loss
from livus.train.datasets import build_targets

@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is faster than several on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SMALL = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16, head_channels=8)


@pytest.mark.parametrize("use_cbam,factorised", [(True, True), (False, False)])
def test_output_shapes(use_cbam: bool, factorised: bool) -> None:
    cfg = DetectorConfig(**{**SMALL.__dict__, "use_cbam": use_cbam, "factorised": factorised})
    model = LesionDetector(cfg)
    x = torch.rand(2, 1, 64, 64)
    out = model(x)
    assert out["heatmap"].shape == (2, 1, 16, 16)
    for k in ("axes", "orient", "offset"):
        assert out[k].shape == (2, 2, 16, 16)
    assert out["lesion_mask"].shape == (2, 1, 64, 64)
    assert out["liver_mask"].shape == (2, 1, 64, 64)
    assert out["aux_heatmap_s8"].shape == (2, 1, 8, 8)
    assert out["aux_masks_s16"].shape == (2, 2, 4, 4)
    model.eval()
    out = model(x)
    assert "aux_heatmap_s8" not in out  # deep supervision only in training


def test_rejects_wrong_input() -> None:
    with pytest.raises(ValueError):
        LesionDetector(SMALL)(torch.rand(1, 3, 64, 64))


def test_checkpoint_round_trip_and_determinism(tmp_path) -> None:
    torch.manual_seed(0)
    model = LesionDetector(SMALL).eval()
    path = save_detector(model, tmp_path / "d.pt", {"version": "test-1", "metrics": {"x": 1.0}})
    loaded = load_detector(path)
    assert not loaded.training
    assert loaded.cfg == SMALL
    assert loaded.meta["version"] == "test-1"
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        a, b, c = model(x), loaded(x), loaded(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
        assert torch.equal(b[k], c[k])  # inference is deterministic


def _toy_sample(rng: np.random.Generator, s: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dark disc (lesion) inside a bright square (liver) on noise."""
    img = rng.uniform(0.0, 0.2, (s, s)).astype(np.float32)
    liver = np.zeros((s, s), np.uint8)
    liver[8:56, 8:56] = 1
    img[liver > 0] += 0.5
    yy, xx = np.mgrid[0:s, 0:s]
    cx, cy, r = rng.integers(20, 44), rng.integers(20, 44), rng.integers(4, 9)
    les = (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).astype(np.uint8)
    img[les > 0] = 0.1
    return img, les, liver


def test_loss_falls_on_tiny_synthetic_set() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    samples = [_toy_sample(rng) for _ in range(4)]
    targets = [build_targets(les, liv, True) for _, les, liv in samples]
    batch = {k: torch.stack([torch.as_tensor(t[k]) for t in targets]) for k in targets[0]}
    x = torch.from_numpy(np.stack([s[0] for s in samples]))[:, None]
    model = LesionDetector(SMALL)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        total, parts, per_image = detector_loss(model(x), batch, {})
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
    assert per_image.shape == (4,)
    assert set(parts) >= {"heatmap", "axes", "orient", "offset", "lesion_mask", "liver_mask", "aux"}
    assert losses[-1] < 0.7 * losses[0]


def test_shipped_model_drops_aux_heads_and_keeps_outputs(tmp_path) -> None:
    from livus.models.detector import load_checkpoint
    from livus.train.detector import ship_model

    torch.manual_seed(1)
    model = LesionDetector(SMALL).eval()
    trained = save_detector(model, tmp_path / "trained.pt", {"version": "v1"})
    shipped = ship_model(trained, tmp_path / "ship.pt", score_threshold=0.42, extra_meta={"cv": {"a": 1.0}})
    ckpt = load_checkpoint(shipped)
    assert not any(k.startswith("aux.") for k in ckpt["state_dict"])
    loaded = load_detector(shipped)
    assert loaded.cfg.score_threshold == 0.42 and loaded.meta["version"] == "v1" and loaded.meta["cv"] == {"a": 1.0}
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
