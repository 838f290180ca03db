"""Input drift against training statistics."""

from __future__ import annotations

import math

import numpy as np

from livus.monitor.drift import drift_report, frame_stats, reference_stats, standardised_difference


def frames(mean: float, n: int, seed: int, size=(120, 160), scanner: str = "ACME X1") -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.clip(rng.normal(mean + rng.normal(0, 3), 20, size), 0, 255).astype(np.uint8)
        out.append(frame_stats(img, {"Manufacturer": scanner.split()[0], "ManufacturerModelName": scanner.split()[1]}))
    return out


def test_frame_stats():
    img = np.zeros((10, 20), np.uint8)
    img[:, 10:] = 200
    s = frame_stats(img, {"device": "probe-7"})
    assert s["mean_grey"] == 100 and s["width_px"] == 20 and s["height_px"] == 10
    assert s["dark_fraction"] == 0.5 and s["scanner"] == "probe-7"


def test_standardised_difference():
    assert standardised_difference(12, 10, 2) == 1
    assert standardised_difference(10, 10, 0) == 0
    assert math.isinf(standardised_difference(11, 10, 0))


def test_same_distribution_is_ok_and_shift_is_drift():
    ref = reference_stats(frames(80, 60, seed=0))
    ok = drift_report(ref, frames(80, 30, seed=1), smd_threshold=1.0, min_frames=10)
    assert ok["status"] == "ok", ok
    bright = drift_report(ref, frames(160, 30, seed=2), smd_threshold=1.0, min_frames=10)
    assert bright["status"] == "drift" and bright["stats"]["mean_grey"]["drift"]
    assert any("mean_grey" in r for r in bright["reasons"])
    resized = drift_report(ref, frames(80, 30, seed=3, size=(240, 320)), 1.0, 10)
    assert resized["status"] == "drift" and resized["stats"]["width_px"]["drift"]
    scanner = drift_report(ref, frames(80, 30, seed=4, scanner="OTHER Y2"), 1.0, 10)
    assert scanner["status"] == "drift" and scanner["unseen_scanner_share"] == 1.0


def test_no_reference_or_too_few_frames():
    assert drift_report(None, frames(80, 30, 0), 1.0, 10)["status"] == "no-reference"
    ref = reference_stats(frames(80, 30, 0))
    assert drift_report(ref, frames(80, 3, 1), 1.0, 10)["status"] == "too-few-frames"
