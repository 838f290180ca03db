"""Simulator checks: speckle statistics, labels vs pixels, determinism, overlays/ruler,
DICOM round trip, dataset writer."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from livus.io.dataset import load_dataset
from livus.io.dicom_write import write_us_dicom
from livus.simulate.overlays import RULER_LONG_PX, RULER_SHORT_PX, ruler_tick_rows, ruler_x_range
from livus.simulate.phantom import CosField, Ellipse, Scene, evaluate_scene
from livus.simulate.physics import EchoMaps, build_geometry, rf_envelope
from livus.simulate.profiles import PROFILES, get_profile
from livus.simulate.scenes import place_lesions, sample_anatomy
from livus.simulate.still import GeometryCache, overlay_info_for, simulate_still
from livus.vocab import FEATURE_NAMES

SMALL = (512, 512)


@pytest.fixture(scope="module")
def cache() -> GeometryCache:
    return GeometryCache()


@pytest.mark.parametrize("name", ["sonora_c5", "sonora_l9"])
def test_speckle_is_rayleigh(name: str) -> None:
    """Homogeneous medium → envelope SNR (mean/std) ≈ 1.91 before log compression."""
    geom = build_geometry(get_profile(name), SMALL)
    shape = geom.shape_polar
    maps = EchoMaps(np.ones(shape, np.float32), np.full(shape, 0.5, np.float32))
    env = rf_envelope(geom, maps, np.random.default_rng(0))
    n_r, n_b = shape
    patch = env[n_r // 5: 4 * n_r // 5, n_b // 5: 4 * n_b // 5]
    snr = patch.mean() / patch.std()
    assert abs(snr - 1.91) < 0.1, snr


def _labelled(rng, cache, profile="vistara_c6", diag=("hcc",)):
    geom = cache.get(get_profile(profile), SMALL)
    for _ in range(30):
        scene = sample_anatomy(rng, geom, "normal")
        place_lesions(rng, scene, geom, list(diag))
        if scene.lesions:
            return geom, scene
    raise AssertionError("no lesion placed")


def test_labels_match_pixels(cache) -> None:
    rng = np.random.default_rng(1)
    for diag in ("hcc", "cyst", "metastasis", "focal_fat_sparing"):
        geom, scene = _labelled(rng, cache, diag=(diag,))
        sim = simulate_still(rng, geom, scene=scene)
        assert sim.lesions
        for lab in sim.lesions:
            ann = lab.annotation
            m = sim.lesion_mask == ann.mask_value
            assert m.sum() > 0
            assert (geom.fan_mask[m] > 0).all(), "lesion mask outside the fan"
            # ellipse long/short axes vs the mask's extent along the ellipse axes
            ys, xs = np.nonzero(m)
            cx, cy, long_px, short_px, ang = ann.ellipse
            u = np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang))])
            n = np.array([-u[1], u[0]])
            pts = np.stack([xs, ys], 1).astype(float)
            ext_u = np.ptp(pts @ u) + 1
            ext_n = np.ptp(pts @ n) + 1
            assert abs(ext_u - long_px) <= 0.1 * long_px + 2
            assert abs(ext_n - short_px) <= 0.1 * short_px + 2
            assert set(ann.features) == set(FEATURE_NAMES)
            assert ann.diagnosis == diag and ann.malignant == (diag in ("hcc", "metastasis"))
            # the rendered lesion differs from its surroundings for clearly non-iso lesions
            if diag == "cyst" and m.sum() > 30:
                assert sim.clean[m].mean() < 0.6 * np.median(sim.clean[geom.fan_mask > 0])


def test_determinism(cache) -> None:
    geom = cache.get(get_profile("echowave_c4m"), SMALL)
    a = simulate_still(np.random.default_rng(5), geom)
    b = simulate_still(np.random.default_rng(5), geom)
    c = simulate_still(np.random.default_rng(6), geom)
    assert np.array_equal(a.clean, b.clean) and np.array_equal(a.lesion_mask, b.lesion_mask)
    assert not np.array_equal(a.clean, c.clean)


@pytest.mark.parametrize("name", list(PROFILES))
def test_overlays_and_ruler(name: str, cache) -> None:
    from datetime import datetime

    from livus.simulate.overlays import OverlayOptions

    prof = get_profile(name)
    geom = cache.get(prof)
    rng = np.random.default_rng(2)
    info = overlay_info_for(prof, "DOE^JOHN", "P1", datetime(2023, 1, 2, 3, 4, 5))
    for side in ("left", "right"):
        opts = OverlayOptions(ruler_side=side, calipers=True)
        sim = simulate_still(rng, geom, info=info, options=opts)
        changed = sim.image != sim.clean
        assert changed.any()
        assert (sim.overlay_mask[changed] > 0).all(), "overlay mask misses drawn pixels"
        # the ruler: bright ticks every 10 mm just outside the fan
        x_anchor, direction = ruler_x_range(geom, side)
        if side == "right" and x_anchor + RULER_LONG_PX >= geom.width:
            x_anchor, direction = ruler_x_range(geom, "left")
        rows = ruler_tick_rows(geom)
        assert len(rows) >= 4
        spacing_px = np.diff(rows).mean()
        assert abs(spacing_px * sim.pixel_spacing_mm[1] - 10.0) < 0.5
        for k, y in enumerate(rows):
            cols = x_anchor + direction * np.arange(RULER_LONG_PX if k % 5 == 0 else RULER_SHORT_PX)
            assert (sim.image[y, cols] >= 200).all()
            assert 4 <= len(cols) <= 12
            assert not geom.fan_mask[y, cols].any()


def test_dicom_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (60, 80), dtype=np.uint8) for _ in range(3)]
    p1 = write_us_dicom(tmp_path / "one.dcm", frames[:1], (0.3, 0.3), {"name": "DOE^JANE", "id": "X1"})
    p3 = write_us_dicom(tmp_path / "multi.dcm", frames, (0.25, 0.25), {"name": "DOE^JANE"}, frame_time_ms=50.0)
    d1 = pydicom.dcmread(p1)
    assert d1.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1"
    assert np.array_equal(d1.pixel_array, frames[0])
    reg = d1.SequenceOfUltrasoundRegions[0]
    assert reg.PhysicalUnitsXDirection == 3 and reg.PhysicalDeltaX == pytest.approx(0.03)
    assert str(d1.PatientName) == "DOE^JANE" and d1.PatientID == "X1"
    d3 = pydicom.dcmread(p3)
    assert d3.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert int(d3.NumberOfFrames) == 3 and float(d3.FrameTime) == 50.0
    assert np.array_equal(d3.pixel_array, np.stack(frames))
    assert d3.SequenceOfUltrasoundRegions[0].PhysicalDeltaY == pytest.approx(0.025)


def test_posterior_shadow_and_enhancement(cache) -> None:
    """A cyst brightens, a rib darkens what lies behind it."""
    geom = cache.get(get_profile("vistara_c6"), SMALL)
    rng = np.random.default_rng(3)
    scene = sample_anatomy(rng, geom, "normal")
    scene.vessels, scene.gallbladder, scene.kidney, scene.ribs = [], None, None, []
    base = evaluate_scene(scene, geom.X, geom.Z)
    scene.ribs = [Ellipse(0.0, scene.wall_mm * 0.5, 5.0, 3.0)]
    shadowed = evaluate_scene(scene, geom.X, geom.Z)
    j = geom.shape_polar[1] // 2
    assert shadowed.atten[:, j].sum() > base.atten[:, j].sum() * 3
    assert isinstance(scene.texture, CosField) and isinstance(scene, Scene)


@pytest.mark.slow
def test_simulate_dataset_end_to_end(tmp_path) -> None:
    from livus.simulate.dataset import simulate_dataset

    path = simulate_dataset(tmp_path / "ds", n=4, clips=True, ceus=True, dicom=True, profile="echowave_c4m",
                            seed=1, clip_frames=8)
    ds = load_dataset(path.parent)
    stills = [r for r in ds if r.clip_id is None]
    assert len(stills) == 4
    for rec in ds:
        assert rec.pixel_spacing_mm and rec.device == "echowave_c4m" and rec.acquired_at
        img = ds.read_image(rec)
        mask = ds.read_mask(rec)
        assert img.shape == mask.shape == (rec.height, rec.width)
        assert {les.mask_value for les in rec.lesions} == set(np.unique(mask)) - {0}
        assert rec.image_class == ("normal" if not rec.lesions else
                                   "malignant" if any(les.malignant for les in rec.lesions) else "benign")
    clip_ids = {r.clip_id for r in ds if r.clip_id}
    assert any(c.startswith("bmode") for c in clip_ids) and any(c.startswith("ceus") for c in clip_ids)
    ceus = [r for r in ds if r.clip_id and r.clip_id.startswith("ceus")]
    assert all(r.seconds_after_injection is not None for r in ceus)
    assert all(les.ceus.get("washout") in ("none", "late", "early") for r in ceus for les in r.lesions)
    bm = [r for r in ds if r.clip_id and r.clip_id.startswith("bmode")]
    ids = [les.lesion_id for r in bm for les in r.lesions]
    assert len(ids) == 0 or len(set(ids)) <= len(bm[0].lesions) + 3  # stable ids across frames
    assert {r.extra["quality"] for r in bm} <= {"good", "shadowed", "out_of_liver"}
    assert (path.parent / "clips" / "bmode_001.avi").stat().st_size > 0
    dcm = sorted((path.parent / "dicom").glob("*.dcm"))
    assert len(dcm) >= 2
    import cv2

    cap = cv2.VideoCapture(str(path.parent / "clips" / "bmode_001.avi"))
    ok, frame = cap.read()
    assert ok and frame.shape[:2] == (480, 640)
