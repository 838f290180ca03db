"""CEUS feature training (livus.train.ceus) on a few tiny simulated clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from livus.models.ceus import WASHOUT_CLASSES, CeusConfig, load_ceus_model
from livus.train.ceus import (
    CeusTrainConfig,
    cross_validate,
    jitter_outlines,
    sample_times,
    simulate_ceus_lesions,
    split_by_clip,
    train_ceus,
)

SMALL = (192, 144)  # frame size of the test clips (pixels)


@pytest.fixture(scope="module")
def lesions() -> list:
    torch.set_num_threads(1)
    return simulate_ceus_lesions(4, seed=3, image_size=SMALL)


def test_simulated_lesions_are_consistent(lesions: list):
    assert len({x.clip_id for x in lesions}) == 4
    for x in lesions:
        assert len(x.windows) == len(x.boxes) == len(x.times_s) >= 3
        assert np.all(np.diff(x.times_s) > 0)
        x0, y0, x1, y1 = x.boxes[0]
        h, w = x.windows[0].shape
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h  # the box lies in its window
        p = np.asarray(x.polygons[0])
        assert np.allclose([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], x.boxes[0])
        assert x.washout in range(len(WASHOUT_CLASSES))
        assert x.capsule <= x.aphe  # capsule labels only on (hyperenhancing) HCC
        assert x.washout == {"hcc": 1, "metastasis": 2}.get(x.diagnosis, 0)


def test_times_cover_the_phases():
    t = np.asarray(sample_times(np.random.default_rng(0)))
    assert ((t >= 10) & (t < 30)).sum() >= 3 and ((t >= 30) & (t < 120)).sum() >= 2 and (t >= 120).sum() >= 1


def test_split_keeps_clips_together(lesions: list):
    train, test = split_by_clip(lesions, 0.5, seed=0)
    assert train and test and len(train) + len(test) == len(lesions)
    assert not {x.clip_id for x in train} & {x.clip_id for x in test}


def test_jitter_moves_boxes_and_polygons_together_within_limits():
    boxes = [[10.0, 20.0, 30.0, 40.0]] * 5
    polys = [[[10.0, 20.0], [30.0, 20.0], [30.0, 40.0], [10.0, 40.0]]] * 5
    out, out_p = jitter_outlines(boxes, polys, np.random.default_rng(0), shift=0.1, scale=0.1)
    out = np.asarray(out)
    assert not np.allclose(out, boxes)
    for b, p in zip(out, out_p):  # the square polygon stays the box
        p = np.asarray(p)
        assert np.allclose([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], b)
    w = out[:, 2] - out[:, 0]
    cx = (out[:, 0] + out[:, 2]) / 2
    assert np.all(np.abs(w / 20 - 1) <= 0.1 * 4 / 3 + 1e-9) and np.all(np.abs(cx - 20) <= 20 * 0.1 * 4 / 3 + 1e-9)


def test_train_ceus_end_to_end(lesions: list, tmp_path: Path):
    tcfg = CeusTrainConfig(n_clips=4, seed=3, test_fraction=0.5, epochs=3, jitter_copies=1)
    model, report = train_ceus(tcfg, CeusConfig(hidden=8), tmp_path / "ceus.pt", lesions=lesions)
    assert report["n_train_clips"] + report["n_test_clips"] == 4
    assert set(report["held_out"]) == {"polygon", "box", "jittered_box"}
    assert report["held_out"]["polygon"]["n"] == report["n_test_lesions"]
    back = load_ceus_model(tmp_path / "ceus.pt")
    assert back.meta["n_test_clips"] == report["n_test_clips"] and "simulated" in back.meta["trained_on"]


def test_cross_validation_predicts_every_lesion_once(lesions: list):
    tcfg = CeusTrainConfig(seed=3, epochs=2, jitter_copies=0)
    res = cross_validate(lesions, CeusConfig(hidden=8), tcfg, folds=2)
    assert set(res) == {"polygon", "box", "jittered_box"}
    assert all(r["n"] == len(lesions) for r in res.values())
    assert all(0.0 <= r["washout_acc"] <= 1.0 for r in res.values())
