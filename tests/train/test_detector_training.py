"""End-to-end: a tiny k-fold run on a generated dataset writes logs, models and CV figures."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from livus.config import DetectorConfig, LivusConfig, TrainConfig
from livus.io.dataset import ImageRecord, LesionAnnotation, load_dataset, save_dataset, write_png
from livus.models.detector import load_detector
from livus.train.detector import format_cv_table, load_cv_run, revalidate_run, train_detector


def _make_dataset(root, n: int = 6) -> None:
    rng = np.random.default_rng(0)
    recs = []
    for i in range(n):
        img = np.zeros((96, 128), np.uint8)
        cv2.ellipse(img, (64, 0), (90, 90), 0, 40, 140, 1, -1)  # fan-like sector
        fan = img > 0
        img[fan] = rng.integers(90, 140, int(fan.sum()))
        lesions = []
        cls = "normal" if i % 3 == 0 else "benign"
        if cls != "normal":
            cx, cy = int(rng.integers(50, 78)), int(rng.integers(35, 60))
            cv2.circle(img, (cx, cy), 8, 30, -1)
            t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            lesions.append(LesionAnnotation([[cx + 8 * np.cos(a), cy + 8 * np.sin(a)] for a in t], mask_value=1))
        write_png(root / "images" / f"img_{i}.png", img)
        recs.append(ImageRecord(id=i + 1, file_name=f"images/img_{i}.png", width=128, height=96, image_class=cls,
                                liver_polygon=[[30, 20], [100, 20], [100, 80], [30, 80]], lesions=lesions))
    save_dataset(root, recs)


@pytest.mark.slow
def test_tiny_cv_run_writes_everything(tmp_path) -> None:
    data = tmp_path / "ds"
    _make_dataset(data)
    sim = tmp_path / "sim"
    _make_dataset(sim, n=4)
    cfg = LivusConfig(
        detector=DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16, head_channels=8),
        train=TrainConfig(epochs=2, batch_size=4, folds=2, num_threads=1, eval_every=1, use_simulated=True, simulated_dir=str(sim)),
    )
    out = tmp_path / "run"
    summary = train_detector(data, cfg, out, folds=2, progress=False)
    assert len(summary["per_fold"]) == 2
    assert set(summary["mean"]) >= {"sens@0.25fp", "sens_lt60", "mass_dice", "liver_dice"}
    for f in (0, 1):
        assert (out / f"fold{f}" / "log.csv").read_text().count("\n") == 3  # header + 2 epochs
        assert json.loads((out / f"fold{f}" / "metrics.json").read_text())["n_images"] == 3
        assert (out / f"fold{f}" / "froc.png").is_file()
    model = load_detector(out / "fold0" / "detector.pt")
    assert model.meta["fold"] == 0
    assert model.meta["train_images"] == 3 + 4  # simulated images join the training split only
    assert model.meta["training_data"].endswith("+ simulated")
    assert "| mean |" in format_cv_table(summary)
    # resume: finished folds are not retrained
    before = (out / "fold0" / "detector.pt").stat().st_mtime_ns
    train_detector(data, cfg, out, folds=2, resume=True, progress=False)
    assert (out / "fold0" / "detector.pt").stat().st_mtime_ns == before


def test_folds_to_run_limits_the_folds(tmp_path) -> None:
    data = tmp_path / "ds"
    _make_dataset(data)
    cfg = LivusConfig(
        detector=DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16, head_channels=8),
        train=TrainConfig(epochs=1, batch_size=4, folds=2, num_threads=1, folds_to_run=(1,)),
    )
    summary = train_detector(data, cfg, tmp_path / "run", progress=False)
    assert len(summary["per_fold"]) == 1
    assert not (tmp_path / "run" / "fold0").exists() and (tmp_path / "run" / "fold1" / "detector.pt").is_file()
    # the run as its folds saw the data: only fold 1 has a model, validated on its own split
    cv = load_cv_run(tmp_path / "run", data)
    assert cv.folds == [1] and len(cv.splits) == 2
    cache_1, recs_1 = cv.validation(1)
    assert len(cache_1) == len(recs_1) == len(cv.splits[1][1]) > 0
    assert {r.file_name for r in recs_1}.isdisjoint(cv.records[i].file_name for i in cv.splits[1][0])
    assert len(revalidate_run(tmp_path / "run", data)) == 1


def test_interrupted_run_resumes_from_state(tmp_path, monkeypatch) -> None:
    import livus.train.detector as det

    data = tmp_path / "ds"
    _make_dataset(data)
    cfg = LivusConfig(
        detector=DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16, head_channels=8),
        train=TrainConfig(epochs=2, batch_size=4, folds=2, num_threads=1, folds_to_run=(0,)),
    )
    real = det.train_one_epoch
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(det, "train_one_epoch", flaky)
    with pytest.raises(KeyboardInterrupt):
        train_detector(data, cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "fold0" / "state.pt").is_file()
    monkeypatch.setattr(det, "train_one_epoch", real)
    train_detector(data, cfg, tmp_path / "run", resume=True, progress=False)
    rows = (tmp_path / "run" / "fold0" / "log.csv").read_text().strip().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["1", "2"]  # epoch 1 not repeated


def test_init_from_starts_each_fold_from_that_folds_weights(tmp_path, monkeypatch) -> None:
    """A second, warm-restarted schedule: fold f starts from the first run's fold f (whose training
    split is the same, so no fold starts from weights that saw its validation images)."""
    import torch

    import livus.train.detector as mod
    from livus.train.detector import init_checkpoint

    data = tmp_path / "ds"
    _make_dataset(data)
    det = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16, head_channels=8)
    first = tmp_path / "first"
    train_detector(data, LivusConfig(detector=det, train=TrainConfig(epochs=1, batch_size=4, folds=2, num_threads=1)), first, progress=False)
    cfg = LivusConfig(detector=det, train=TrainConfig(epochs=1, batch_size=4, folds=2, num_threads=1, init_from=str(first)))
    assert init_checkpoint(cfg, "fold1") == first / "fold1" / "detector.pt"
    with pytest.raises(FileNotFoundError):
        init_checkpoint(cfg, "all")  # the first run has no final model
    assert init_checkpoint(LivusConfig(), "fold0") is None

    seen: list[torch.Tensor] = []
    real = mod.train_one_epoch

    def spy(model, *a, **k):  # the weights the first epoch starts from
        seen.append(next(iter(model.state_dict().values())).clone())
        return real(model, *a, **k)

    monkeypatch.setattr(mod, "train_one_epoch", spy)
    train_detector(data, cfg, tmp_path / "second", progress=False)
    for f in (0, 1):
        start = next(iter(load_detector(first / f"fold{f}" / "detector.pt").state_dict().values()))
        assert torch.equal(seen[f], start)
    assert load_detector(tmp_path / "second" / "fold0" / "detector.pt").meta["init_from"].endswith("fold0/detector.pt")
    assert not torch.equal(seen[0], seen[1])


def test_cache_is_rebuilt_when_the_images_change_but_not_their_count(tmp_path) -> None:
    from livus.train.detector import get_cache

    data = tmp_path / "ds"
    _make_dataset(data, n=3)
    cfg = LivusConfig(detector=DetectorConfig(input_size_px=64))
    out = tmp_path / "run"
    records = load_dataset(data).images
    first = get_cache(cfg, data, out, records)
    again = get_cache(cfg, data, out, records)  # unchanged: read back, same pixels
    np.testing.assert_allclose(again.images, first.images, atol=1e-3)
    img = cv2.imread(str(data / records[0].file_name), cv2.IMREAD_GRAYSCALE)
    write_png(data / records[0].file_name, 255 - img)  # same file, same count, other pixels
    rebuilt = get_cache(cfg, data, out, records)
    assert len(rebuilt) == len(first)
    assert np.abs(rebuilt.images[0] - first.images[0]).mean() > 0.05
    np.testing.assert_allclose(rebuilt.images[1:], first.images[1:], atol=1e-3)


def test_cache_is_rebuilt_when_the_preprocessing_changes(tmp_path) -> None:
    from livus.train.datasets import saved_fingerprint
    from livus.train.detector import get_cache

    data = tmp_path / "ds"
    _make_dataset(data, n=2)
    out = tmp_path / "run"
    records = load_dataset(data).images
    get_cache(LivusConfig(detector=DetectorConfig(input_size_px=64)), data, out, records)
    before = saved_fingerprint(out / "cache_64.npz")
    cfg = LivusConfig(detector=DetectorConfig(input_size_px=64))
    cfg.preprocess.speckle_filter = "median" if cfg.preprocess.speckle_filter == "none" else "none"
    get_cache(cfg, data, out, records)
    assert before and saved_fingerprint(out / "cache_64.npz") not in ("", before)


def test_init_from_a_shipped_model_without_training_heads(tmp_path) -> None:
    """A researcher fine-tunes from models/detector.pt: the shipped file has no deep-supervision
    heads, which start fresh; every other weight is taken over. Another architecture is refused."""
    import torch

    from livus.models.detector import LesionDetector, save_detector
    from livus.train.detector import load_init_weights, ship_model

    det = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16,
                         head_channels=8, deep_supervision=True)
    trained = LesionDetector(det)
    save_detector(trained, tmp_path / "trained.pt", {})
    shipped = ship_model(tmp_path / "trained.pt", tmp_path / "shipped.pt")
    assert not any(k.startswith("aux.") for k in load_detector(shipped).state_dict())
    model = LesionDetector(det)
    load_init_weights(model, shipped)
    for k, v in trained.state_dict().items():
        if not k.startswith("aux."):
            assert torch.equal(model.state_dict()[k], v), k
    no_aux = LesionDetector(DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8,
                                           fpn_channels=16, head_channels=8, deep_supervision=False))
    load_init_weights(no_aux, tmp_path / "trained.pt")  # a training checkpoint's heads are simply not needed
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in no_aux.state_dict().items())
    other = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16,
                           head_channels=16, deep_supervision=True)
    with pytest.raises(ValueError, match="architecture"):
        load_init_weights(LesionDetector(other), shipped)


def _synthetic_predictions(rng: np.random.Generator, n_images: int, stems: list[str]):
    from livus.train.calibration import HeldOutPredictions

    idx = np.repeat(np.arange(n_images), 3)
    is_true = rng.random(len(idx)) < 0.3
    evidence = np.column_stack([is_true + rng.normal(0, 0.7, len(idx)), rng.random((len(idx), 3))])
    classes = ["normal" if i % 3 == 0 else "benign" for i in range(n_images)]
    n_les = np.bincount(idx, weights=is_true, minlength=n_images).astype(np.int64)
    return HeldOutPredictions(evidence, is_true, idx, np.full((n_images, 3), np.nan), classes, n_les, stems,
                              rng.uniform(0.7, 0.9, n_images))


def test_one_fold_probe_runs_compare_on_that_fold(tmp_path, monkeypatch) -> None:
    """benchmarks/paired_cv_comparison.py on runs that trained fold 0 only (train.folds_to_run):
    compared on fold 0's images, the operating point fitted on that fold and said so; with
    several folds it stays cross-fitted."""
    import importlib.util
    import sys
    from pathlib import Path

    from livus.train.calibration import cross_fitted_operating_point, fit_score_calibration

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "paired_cv_comparison.py"
    spec = importlib.util.spec_from_file_location("paired_cv_comparison", script)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    data = tmp_path / "ds"
    _make_dataset(data, n=8)
    det = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 16, 32), stem_channels=8, fpn_channels=16, head_channels=8)
    run = tmp_path / "run"
    train_detector(data, LivusConfig(detector=det, train=TrainConfig(epochs=1, batch_size=4, folds=2, num_threads=1,
                                                                      folds_to_run=(0,))), run, progress=False)
    cv = load_cv_run(run, data)
    assert cv.folds == [0]
    stems = [r.file_name for r in cv.validation(0)[1]]
    rng = np.random.default_rng(0)
    fake = iter([_synthetic_predictions(rng, len(stems), stems) for _ in range(2)])
    monkeypatch.setattr(bench, "held_out_predictions", lambda *a: next(fake))
    base, other = bench.pooled_run(run, data), bench.pooled_run(run, data)
    assert not base.cross_fitted and base.stems == stems
    res = bench.compare(base, other, 50, rng)
    assert res["normal_with_lesion"]["of"] == sum(c == "normal" for c in base.pred.classes)
    lo, hi = res["differences"]["liver_dice"]["ci95"]
    assert lo <= res["differences"]["liver_dice"]["run_minus_base"] <= hi

    one = {0: _synthetic_predictions(rng, 40, [f"a{i}" for i in range(40)])}
    assert bench.operating_point(one, 0)[0] == fit_score_calibration(one[0].evidence, one[0].is_true)
    two = {**one, 1: _synthetic_predictions(rng, 40, [f"b{i}" for i in range(40)])}
    assert bench.operating_point(two, 0) == cross_fitted_operating_point(two, 0, bench.FP_RATE)
