"""CEUS feature model (livus.models.ceus): measurements, phase slots, shapes, checkpoints and
the learned ordering on small drawn contrast clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from livus.models.ceus import (
    MEASUREMENT_NAMES,
    WASHOUT_CLASSES,
    CeusConfig,
    CeusModel,
    ceus_features_for_lesion,
    ceus_features_for_track,
    frame_measurements,
    load_ceus_model,
    phase_samples,
    predict,
    save_ceus_model,
)

BOX = [36.0, 38.0, 60.0, 58.0]  # lesion box of the drawn clips (pixels of a 96x96 frame)
TIMES = (2.0, 12.0, 18.0, 24.0, 35.0, 50.0, 75.0, 110.0, 150.0, 200.0)
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "ceus.pt"


def _liver(t: float) -> float:
    return 0.0 if t < 15 else (1 - np.exp(-(t - 15) / 14)) * np.exp(-0.004 * (t - 15))


def _lesion(pattern: str, t: float) -> float:
    """Lesion enhancement (liver peak = 1): ``hyper_early`` arterial hyperenhancement then
    marked washout before 60 s; ``none`` no enhancement (cyst-like); ``iso`` follows the liver."""
    if pattern == "hyper_early":
        return 0.0 if t < 10 else 2.0 * (1 - np.exp(-(t - 10) / 3.5)) * np.exp(-0.05 * (t - 10))
    return 0.0 if pattern == "none" else _liver(t)


def draw_clip(pattern: str, rng: np.random.Generator, times: tuple[float, ...] = TIMES) -> list[np.ndarray]:
    """96x96 uint8 contrast frames: speckle-like noise on liver and lesion amplitudes (grey ∝
    log amplitude, as the simulator's display)."""
    yy, xx = np.mgrid[:96, :96]
    inside = ((xx - 48) / 12) ** 2 + ((yy - 48) / 10) ** 2 < 1
    frames = []
    for t in times:
        amp = np.where(inside, _lesion(pattern, t), _liver(t)) + 0.004
        grey = 95 + 20 * np.log10(amp) * 2 + rng.normal(0, 8, amp.shape)
        frames.append(np.clip(grey, 1, 255).astype(np.uint8))
    return frames


def test_measurements_see_a_bright_lesion():
    frame = np.full((96, 96), 60, np.uint8)
    yy, xx = np.mgrid[:96, :96]
    frame[((xx - 48) / 12) ** 2 + ((yy - 48) / 10) ** 2 < 1] = 160
    m = dict(zip(MEASUREMENT_NAMES, frame_measurements(frame, BOX)))
    assert m["ring"] == pytest.approx(60 / 255, abs=1e-6)
    assert m["lesion_minus_ring"] > 0.3
    assert m["core_minus_ring"] == pytest.approx(100 / 255, abs=1e-6)
    assert m["frac_above_ring"] > 0.8


def test_phase_slots_use_nearest_frame_and_flag_missing_windows():
    cfg = CeusConfig(slot_times_s=(15.0, 60.0, 180.0))
    frames = draw_clip("iso", np.random.default_rng(0), (14.0, 16.0, 70.0))
    s = phase_samples(frames, (14.0, 16.0, 70.0), [BOX, None, BOX], cfg)
    assert s.measurements.shape == (3, len(MEASUREMENT_NAMES)) and s.crops is None
    assert s.times[:, 0] * 180 == pytest.approx([14.0, 70.0, 70.0])  # frame 16 s has no box
    assert s.times[:, 1].tolist() == [1.0, 1.0, 0.0]  # nothing inside the late window
    with pytest.raises(ValueError):
        phase_samples(frames, (14.0, 16.0, 70.0), [None, None, None], cfg)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_forward_shapes_and_checkpoint_round_trip(kind: str, tmp_path: Path):
    cfg = CeusConfig(kind=kind)
    model = CeusModel(cfg).eval()
    s = [phase_samples(draw_clip(p, np.random.default_rng(1)), TIMES, [BOX] * len(TIMES), cfg) for p in ("none", "iso")]
    if kind == "cnn":
        assert s[0].crops.shape == (cfg.n_slots, 2, cfg.crop_px, cfg.crop_px)
    model.set_normalisation(np.stack([x.measurements for x in s]))
    p = predict(model, s)
    assert p["aphe"].shape == (2,) and p["capsule"].shape == (2,) and p["washout"].shape == (2, len(WASHOUT_CLASSES))
    assert np.allclose(p["washout"].sum(1), 1, atol=1e-5)
    save_ceus_model(model, tmp_path / "ceus.pt", {"note": "test"})
    assert (tmp_path / "ceus.pt").stat().st_size < 1_000_000
    back = load_ceus_model(tmp_path / "ceus.pt")
    assert back.meta == {"note": "test"} and back.cfg == cfg
    q = predict(back, s)
    for k in p:  # weights are stored as float16
        assert np.allclose(p[k], q[k], atol=2e-3)
    torch.save({"kind": "other"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError):
        load_ceus_model(tmp_path / "bad.pt")


def _ordering_ok(model: CeusModel) -> bool:
    rng = np.random.default_rng(123)
    boxes = [BOX] * len(TIMES)
    pos = [ceus_features_for_lesion(draw_clip("hyper_early", rng), TIMES, boxes, model) for _ in range(3)]
    neg = [ceus_features_for_lesion(draw_clip(p, rng), TIMES, boxes, model) for p in ("none", "iso", "none")]
    aphe_ok = min(p["arterial_phase_hyperenhancement"] for p in pos) > max(n["arterial_phase_hyperenhancement"] for n in neg)
    early_ok = min(p["washout_early"] for p in pos) > max(n["washout_early"] for n in neg)
    return aphe_ok and early_ok


def test_trained_on_drawn_clips_ranks_hyperenhancing_washout_clip_higher():
    """A tiny model trained on drawn clips gives the arterial-hyperenhancing, early-washout clip
    higher APHE and early-washout probabilities than clips without them."""
    from livus.train.ceus import CeusTrainConfig, train_model

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cfg = CeusConfig(hidden=16)
    patterns = ["hyper_early", "none", "iso"] * 6
    samples = [phase_samples(draw_clip(p, rng), TIMES, [BOX] * len(TIMES), cfg) for p in patterns]
    y = {"aphe": np.array([p == "hyper_early" for p in patterns], int),
         "washout": np.array([2 if p == "hyper_early" else 0 for p in patterns]),
         "capsule": np.zeros(len(patterns), int)}
    model = train_model(samples, y, cfg, CeusTrainConfig(epochs=60, batch=8, lr=1e-2))
    assert _ordering_ok(model)
    out = ceus_features_for_lesion(draw_clip("iso", rng), TIMES, [BOX] * len(TIMES), model)
    assert set(out) == {"arterial_phase_hyperenhancement", "washout_none", "washout_late", "washout_early", "capsule_enhancement"}
    assert sum(out[f"washout_{c}"] for c in WASHOUT_CLASSES) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="models/ceus.pt not built")
def test_shipped_model_ranks_drawn_clips():
    """The shipped model (trained on simulator clips only) orders the drawn clips too."""
    assert _ordering_ok(load_ceus_model(SHIPPED))


def test_track_entry_matches_the_per_frame_call():
    from livus.types import Frame, Lesion, LesionTrack

    rng = np.random.default_rng(5)
    pixels = draw_clip("hyper_early", rng)
    frames = [Frame(p, "clip.avi", frame_index=10 + i, time_s=float(i)) for i, p in enumerate(pixels)]
    model = CeusModel(CeusConfig(hidden=8)).eval()
    poly = [[36.0, 38.0], [60.0, 38.0], [60.0, 58.0], [36.0, 58.0]]
    track = LesionTrack(1, "clip.avi", [(10 + i, Lesion(1, 0.9, (48.0, 48.0), 24.0, 20.0, 0.0, poly))
                                        for i in range(len(pixels)) if i != 3])
    got = ceus_features_for_track(frames, track, model, list(TIMES))
    boxes = [BOX if i != 3 else None for i in range(len(pixels))]
    want = ceus_features_for_lesion(pixels, TIMES, boxes, model, [poly if b else None for b in boxes])
    assert got == pytest.approx(want)
