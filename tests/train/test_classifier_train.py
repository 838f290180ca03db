"""Classifier training on a tiny synthetic dataset: samples, loss falls, CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from livus.config import ClassifierConfig
from livus.evaluate.classification import roc_auc
from livus.io.dataset import ImageRecord, LesionAnnotation, load_dataset, save_dataset, write_png
from livus.models.classifier import predict_logits
from livus.train.classifier import ClassifierTrainConfig, build_samples, train_model
from livus.vocab import FEATURE_NAMES


def _toy_dataset(root: Path, n: int = 16, seed: int = 0) -> Path:
    """Dark lesions are malignant, bright ones benign; every 4th lesion also has feature labels."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        img = rng.normal(120, 15, (96, 128)).clip(0, 255).astype(np.uint8)
        malignant = i % 2 == 0
        cx, cy, r = rng.uniform(40, 88), rng.uniform(35, 60), rng.uniform(8, 16)
        yy, xx = np.mgrid[:96, :128]
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 50 if malignant else 200
        write_png(root / "images" / f"{i}.png", img)
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        poly = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1).tolist()
        feats = {n_: None for n_ in FEATURE_NAMES}
        if i % 4 == 0:
            feats["echo_hypo"] = int(malignant)
        recs.append(ImageRecord(i + 1, f"images/{i}.png", 128, 96, "malignant" if malignant else "benign",
                                lesions=[LesionAnnotation(poly, malignant=malignant, features=feats)]))
    save_dataset(root, recs)
    return root


def test_samples_and_loss_falls(tmp_path):
    ds = load_dataset(_toy_dataset(tmp_path / "ds"))
    cfg = ClassifierConfig(encoder="resnet_lite", crop_size_px=32, widths=(8, 16, 32), min_side_px=16)
    s = build_samples(ds, cfg)
    assert len(s) == 16 and s.eval_crops.shape == (16, 2, 32, 32)
    assert np.isnan(s.features[1]).all() and s.features[0, FEATURE_NAMES.index("echo_hypo")] == 1
    assert s.eval_crops[:, 1].max() == pytest.approx(1.0, abs=0.05)  # mask channel present
    log: list[dict] = []
    model = train_model(s, cfg, ClassifierTrainConfig(epochs=25, batch_size=8, lr=3e-3), log)
    losses = [r["loss"] for r in log]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    z = predict_logits(model, s.eval_crops, s.size)["malignancy"]
    assert roc_auc(s.malignant, z) > 0.9


@pytest.mark.slow
def test_cli_cross_validation_writes_outputs(tmp_path):
    from livus.cli import main

    data = _toy_dataset(tmp_path / "ds", n=24)
    out = tmp_path / "run"
    rc = main(["train", "classifier", "--data", str(data), "--out", str(out), "--folds", "2", "--epochs", "2",
               "--save", str(tmp_path / "c.pt"), "--sim", str(data)])
    assert rc == 0
    summary = json.loads((out / "cv.json").read_text())
    assert len(summary["folds"]) == 2 and 0.0 <= summary["mean"]["auc"] <= 1.0
    assert (out / "reliability_pooled.png").is_file() and (tmp_path / "c.pt").is_file()
    assert "echo_hypo" in summary["mean"]["feature_auc"]  # the toy set labels one feature

    from livus.models.classifier import load_classifier

    model = load_classifier(tmp_path / "c.pt")
    assert float(model.threshold) == pytest.approx(summary["mean"]["threshold"], abs=0.5)
    assert model.meta["trained_features"] == ["echo_hypo"]
