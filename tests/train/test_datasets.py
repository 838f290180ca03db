"""Training data: targets from masks, augmentation keeps masks aligned, splits, sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from livus.models.decode import cell_to_pixel, orient_to_angle
from livus.train.datasets import augment_sample, build_targets, copy_paste_lesion, instance_ellipses
from livus.train.splits import stratified_kfold
from livus.train.trainer import HardExampleSampler

S = 64


def _ellipse_mask(cx: float, cy: float, a: float, b: float, angle_deg: float, value: int = 1) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(float)
    t = math.radians(angle_deg)
    u = (xx - cx) * math.cos(t) + (yy - cy) * math.sin(t)
    v = -(xx - cx) * math.sin(t) + (yy - cy) * math.cos(t)
    return ((u / a) ** 2 + (v / b) ** 2 <= 1).astype(np.uint8) * value


def test_instance_ellipse_recovers_axes_and_angle() -> None:
    (cx, cy, long_px, short_px, ang), = instance_ellipses(_ellipse_mask(30, 25, 12, 5, 30))
    assert (cx, cy) == pytest.approx((30, 25), abs=0.6)
    assert long_px == pytest.approx(24, abs=1.5)
    assert short_px == pytest.approx(10, abs=1.5)
    assert ang == pytest.approx(30, abs=4)


def test_build_targets_centre_cell_and_regression() -> None:
    m = _ellipse_mask(30, 25, 12, 5, 30) + _ellipse_mask(50, 50, 4, 4, 0, value=2)
    liver = np.ones((S, S), np.uint8)
    t = build_targets(m, liver, True)
    assert t["heatmap"].shape == (1, 16, 16) and t["heatmap"].max() == 1.0
    assert t["reg_mask"].sum() == 2
    r, c = np.argwhere(t["reg_mask"][0] > 0)[0]
    x = cell_to_pixel(c + t["offset"][0, r, c])
    y = cell_to_pixel(r + t["offset"][1, r, c])
    assert (x, y) == pytest.approx((30, 25), abs=0.6)
    assert math.exp(t["axes"][0, r, c]) == pytest.approx(25, abs=2)
    assert orient_to_angle(t["orient"][0, r, c], t["orient"][1, r, c]) == pytest.approx(30, abs=4)
    # the round lesion carries (almost) no orientation weight
    r2, c2 = np.argwhere(t["reg_mask"][0] > 0)[1]
    assert t["orient_weight"][0, r2, c2] < 0.5 < t["orient_weight"][0, r, c]
    assert t["lesion_mask"].sum() == (m > 0).sum()
    assert float(t["liver_valid"]) == 1.0


def test_empty_image_targets() -> None:
    t = build_targets(np.zeros((S, S), np.uint8), np.zeros((S, S), np.uint8), False)
    assert t["heatmap"].max() == 0 and t["reg_mask"].sum() == 0 and float(t["liver_valid"]) == 0.0


def test_augmentation_moves_masks_with_image() -> None:
    rng = np.random.default_rng(3)
    img = np.zeros((S, S), np.float32)
    les = _ellipse_mask(30, 30, 6, 6, 0)
    img[les > 0] = 1.0
    valid = np.ones((S, S), np.uint8)
    for seed in range(5):
        a_img, a_les, a_liv, a_val = augment_sample(img, les, les.copy(), valid, np.random.default_rng(seed))
        assert a_les.dtype == np.uint8 and set(np.unique(a_les)) <= {0, 1}
        if a_les.any():
            assert a_img[a_les > 0].mean() > 0.5 > a_img[(a_les == 0) & (a_val > 0)].mean()
    del rng


def test_copy_paste_adds_an_instance_in_the_liver() -> None:
    rng = np.random.default_rng(0)
    img = np.full((S, S), 0.5, np.float32)
    liver = np.zeros((S, S), np.uint8)
    liver[10:60, 10:60] = 1
    src_img = np.zeros((S, S), np.float32)
    src_les = _ellipse_mask(20, 20, 5, 5, 0)
    out_img, out_les = copy_paste_lesion(img, np.zeros((S, S), np.uint8), liver, src_img, src_les, rng)
    assert out_les.max() == 1 and (out_les > 0).sum() == (src_les > 0).sum()
    assert np.all(liver[out_les > 0] == 1)
    assert out_img[out_les > 0].mean() < 0.25


def test_stratified_kfold_partitions_and_stratifies() -> None:
    labels = ["a"] * 30 + ["b"] * 60 + ["c"] * 15
    folds = stratified_kfold(labels, 3, seed=1)
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(len(labels)))
    for tr, va in folds:
        assert not set(tr) & set(va)
        assert sum(labels[i] == "b" for i in va) == 20
    with pytest.raises(ValueError):
        stratified_kfold(labels, 1)


def test_hard_example_sampler_prefers_high_loss() -> None:
    s = HardExampleSampler(10, fraction=0.5, seed=0)
    assert sorted(s.epoch_indices().tolist()) == list(range(10))  # first epoch: plain permutation
    s.update(np.arange(10), np.array([0.01] * 9 + [10.0]))
    counts = np.bincount(np.concatenate([s.epoch_indices() for _ in range(20)]), minlength=10)
    assert counts[9] > 3 * counts[:9].max()


def test_csv_log_widens_header(tmp_path) -> None:
    import csv

    from livus.train.trainer import CsvLog

    log = CsvLog(tmp_path / "log.csv")
    log.write({"epoch": 1, "loss": 2.0})
    log.write({"epoch": 2, "loss": 1.5, "dice": 0.7})
    CsvLog(tmp_path / "log.csv").write({"epoch": 3, "loss": 1.0, "dice": 0.8})  # resumed
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [r["dice"] for r in rows] == ["", "0.7", "0.8"]


def test_report_tables() -> None:
    from livus.train.detector import comparison_table, format_cv_table, targets_table

    figs = {"sens@0.25fp": 0.5, "sens_lt60": 0.9, "mass_dice": 0.81, "liver_dice": 0.7}
    t = targets_table(figs)
    assert "| sens@0.25fp | ≥ 0.95 | 0.500 | no |" in t and "| sens_lt60 | ≥ 0.85 | 0.900 | yes |" in t
    cv = {"per_fold": [figs, figs], "mean": figs}
    assert format_cv_table(cv).count("\n") == 4
    assert "| a | 0.500 |" in comparison_table({"a": figs, "b": figs})


@pytest.mark.parametrize("backend", ["builtin", "livus"])
def test_train_set_backends_give_aligned_targets(backend: str) -> None:
    from livus.preprocess.geometry import full_image_letterbox
    from livus.train.datasets import DetectorTrainSet, ModelSpaceCache

    n = 3
    les = np.stack([_ellipse_mask(30, 30, 8, 6, 20)] * n)
    img = np.where(les > 0, 0.1, 0.6).astype(np.float32)
    liver = np.ones((n, S, S), np.uint8)
    cache = ModelSpaceCache(img, les, liver, np.ones(n, bool), np.ones((n, S, S), np.uint8),
                            [full_image_letterbox(S, S, S)] * n, ["benign"] * n, ["a", "b", "c"])
    ds = DetectorTrainSet(cache, augment=True, copy_paste_prob=1.0, seed=0, backend=backend)
    for i in range(n):
        item = ds[i]
        assert item["image"].shape == (1, S, S) and item["heatmap"].shape == (1, 16, 16)
        m = item["lesion_mask"][0].numpy() > 0
        if m.any():  # the lesion stays dark where its mask went
            assert item["image"][0].numpy()[m].mean() < item["image"][0].numpy()[~m].mean()
    with pytest.raises(ValueError):
        DetectorTrainSet(cache, backend="nope")


def test_model_card_keeps_sections_written_by_others(tmp_path) -> None:
    from livus.train.detector import write_model_card

    figs = {"sens@0.25fp": 0.5, "sens_lt60": 0.1, "mass_dice": 0.3, "liver_dice": 0.8}
    cv = {"per_fold": [figs], "mean": figs}
    sections = {"title": "t", "Model": "m", "Training data": "d", "Training": "tr", "Cross-validated figures": "c"}
    card = tmp_path / "MODEL_CARD.md"
    write_model_card(card, sections, {"cv": cv})
    card.write_text(card.read_text() + "\n## Classifier (other)\n\nkept text\n")
    write_model_card(card, sections, {"cv": cv, "comparisons": {"Ablation": {"a": figs}}})
    text = card.read_text()
    assert text.count("## Classifier (other)") == 1 and "kept text" in text
    assert text.index("## Ablation") < text.index("## Classifier (other)")
    # a section this writer used to produce is dropped, not kept as if someone else wrote it
    write_model_card(card, sections, {"cv": cv}, retired=("Ablation",))
    text = card.read_text()
    assert "## Ablation" not in text and text.count("## Classifier (other)") == 1


def test_diffuse_on_real_changes_real_livers_only_and_keeps_lesion_targets() -> None:
    from livus.preprocess.geometry import full_image_letterbox
    from livus.train.datasets import DetectorTrainSet, ModelSpaceCache

    n = 4
    les = np.stack([_ellipse_mask(30, 30, 8, 6, 20)] * n)
    img = np.random.default_rng(0).uniform(0.3, 0.6, (n, S, S)).astype(np.float32)
    cache = ModelSpaceCache(img, les, np.ones((n, S, S), np.uint8), np.ones(n, bool), np.ones((n, S, S), np.uint8),
                            [full_image_letterbox(S, S, S)] * n, ["benign"] * n, ["a", "b", "c", "d"])
    kw = {"augment": True, "seed": 0, "scanner_augment": False, "n_simulated": 1}
    plain = DetectorTrainSet(cache, **kw)
    drawn = DetectorTrainSet(cache, diffuse_on_real_prob=1.0, diffuse_mix={"fibrosis:4": 1.0}, **kw)
    for i in range(n):
        a, b = plain[i], drawn[i]
        assert np.array_equal(a["heatmap"].numpy(), b["heatmap"].numpy())
        assert np.array_equal(a["lesion_mask"].numpy(), b["lesion_mask"].numpy())
        changed = not np.allclose(a["image"].numpy(), b["image"].numpy())
        assert changed == (i < n - 1)  # the last image is simulated: left as it is
    with pytest.raises(ValueError):
        DetectorTrainSet(cache, diffuse_on_real_prob=0.5)


def test_simulated_images_can_leave_the_liver_outline_out_of_the_loss() -> None:
    from livus.preprocess.geometry import full_image_letterbox
    from livus.train.datasets import DetectorTrainSet, ModelSpaceCache

    n = 3
    les = np.stack([_ellipse_mask(30, 30, 8, 6, 20)] * n)
    img = np.random.default_rng(0).uniform(0.3, 0.6, (n, S, S)).astype(np.float32)
    cache = ModelSpaceCache(img, les, np.ones((n, S, S), np.uint8), np.array([True, False, True]), np.ones((n, S, S), np.uint8),
                            [full_image_letterbox(S, S, S)] * n, ["benign"] * n, ["a", "b", "c"])
    kw = {"augment": False, "n_simulated": 1}
    default = [float(DetectorTrainSet(cache, **kw)[i]["liver_valid"]) for i in range(n)]
    real_only = [float(DetectorTrainSet(cache, simulated_liver_loss=False, **kw)[i]["liver_valid"]) for i in range(n)]
    assert default == [1.0, 0.0, 1.0]  # the image without an outline never trains it
    assert real_only == [1.0, 0.0, 0.0]  # the last image is simulated
    a = DetectorTrainSet(cache, simulated_liver_loss=False, **kw)[2]
    assert np.array_equal(a["heatmap"].numpy(), DetectorTrainSet(cache, **kw)[2]["heatmap"].numpy())  # lesions still train
