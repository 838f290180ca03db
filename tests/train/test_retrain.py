"""Retraining round end to end on tiny simulated data: candidate registered inactive with a
written comparison; a second round compares against the (human-)activated first one."""

from __future__ import annotations

from pathlib import Path

import pytest

from livus.config import DetectorConfig, LivusConfig
from livus.io.dataset import ImageRecord, load_dataset
from livus.monitor.registry import ModelRegistry
from livus.train.retrain import (
    RetrainConfig,
    compare_figures,
    fixed_validation_ids,
    recommendation,
    retrain,
    split_confirmed_by_patient,
)


def _rec(i: int, patient: str | None) -> ImageRecord:
    return ImageRecord(id=i, file_name=f"images/{i}.png", width=10, height=10, patient_id=patient)


def test_confirmed_split_keeps_patients_whole():
    recs = [_rec(i, f"p{i // 3}") for i in range(12)]  # 4 patients x 3 images
    train, check = split_confirmed_by_patient(recs, 0.3)
    assert train and check
    assert not {r.patient_id for r in train} & {r.patient_id for r in check}
    assert len(train) + len(check) == 12
    t1, c1 = split_confirmed_by_patient([_rec(0, "a")], 0.3)
    assert len(t1) == 1 and not c1


def test_comparison_verdicts_and_recommendation():
    cand = {"sens@0.25fp": 0.8, "mass_dice": 0.6, "long_axis_err_px": 5.0}
    act = {"sens@0.25fp": 0.7, "mass_dice": 0.6, "long_axis_err_px": 4.0}
    rows = {k: v for k, _, _, v in compare_figures(cand, act)}
    assert rows == {"sens@0.25fp": "better", "mass_dice": "equal", "long_axis_err_px": "worse"}
    assert all(v == "new" for _, _, _, v in compare_figures(cand, None))
    good = recommendation({"validation": cand, "confirmed": cand}, {"validation": act, "confirmed": act})
    assert "may be considered" in good
    bad = recommendation({"validation": act, "confirmed": act}, {"validation": cand, "confirmed": cand})
    assert "keep the active model" in bad


@pytest.mark.slow
def test_retrain_round_registers_inactive_candidate_with_comparison(tmp_path: Path):
    from livus.simulate.dataset import simulate_dataset

    simulate_dataset(tmp_path / "base", 6, seed=1)
    simulate_dataset(tmp_path / "confirmed", 3, seed=2)
    import json
    import shutil

    # the service exports one of the base validation images again as a "confirmed" case
    base0 = load_dataset(tmp_path / "base")
    leaked = [r for r in base0 if r.id in fixed_validation_ids(base0, 0.34)][0]
    shutil.copy(base0.image_path(leaked), tmp_path / "confirmed" / "images" / "leak.png")
    ann = json.loads((tmp_path / "confirmed" / "annotations.json").read_text())
    ann["images"].append(dict(ann["images"][0], id=999, file_name="images/leak.png", patient_id="leak", mask_file=None,
                              overlay_file=None))
    (tmp_path / "confirmed" / "annotations.json").write_text(json.dumps(ann))
    cfg = LivusConfig()
    cfg.detector = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 24, 32), stem_channels=8, fpn_channels=16,
                                  head_channels=8, deep_supervision=False)
    cfg.train.epochs = 1
    cfg.train.batch_size = 4
    cfg.train.augment = False
    base = load_dataset(tmp_path / "base")
    val_ids = fixed_validation_ids(base, 0.34)
    assert val_ids == fixed_validation_ids(base, 0.34)  # the same images every round
    reg_dir = tmp_path / "registry"
    rc = RetrainConfig(base_data=tmp_path / "base", confirmed=[tmp_path / "confirmed"], registry=reg_dir,
                       out=tmp_path / "runs", validation_ids=val_ids, version="cand1")
    r1 = retrain(rc, cfg)
    reg = ModelRegistry(reg_dir)
    assert r1.registered and reg.active("detector") is None  # registered, not activated
    text = r1.comparison_path.read_text(encoding="utf-8")
    assert "fixed validation" in text and "sens@0.25fp" in text and "activate" in text
    assert "confirmed" in r1.candidate and r1.counts["confirmed held out"] >= 1
    assert r1.counts["confirmed dropped (identical to a validation image)"] == 1
    assert reg.get("detector", "cand1").has_card

    reg.activate("detector", "cand1")  # the human decision
    rc.version = "cand2"
    r2 = retrain(rc, cfg)
    assert r2.active_version == "cand1" and r2.active is not None
    assert "| sens@0.25fp |" in r2.comparison_path.read_text(encoding="utf-8")
    assert reg.active("detector").version == "cand1"  # still the human-chosen one
    assert [v.version for v in reg.versions("detector")] == ["cand1", "cand2"]
