"""Frame pipeline: shapes, ranges, spacing sources, caching, coordinate mapping."""

from __future__ import annotations

import numpy as np

from livus.config import PreprocessConfig
from livus.preprocess.fan import FanCache, mask_iou
from livus.preprocess.pipeline import preprocess_frame
from livus.preprocess.spacing import UNKNOWN_SPACING_WARNING
from livus.types import Frame

from .synth import speckle_frame


def test_preprocess_frame_outputs() -> None:
    img, fan, _ = speckle_frame(640, 480)
    cfg = PreprocessConfig(input_size_px=128)
    pre = preprocess_frame(Frame(pixels=img, source="a.png"), cfg)
    assert pre.image.shape == (128, 128) and pre.image.dtype == np.float32
    assert 0.0 <= pre.image.min() and pre.image.max() <= 1.0
    assert pre.valid_mask.shape == (128, 128) and pre.valid_mask.dtype == np.uint8
    assert pre.image[pre.valid_mask == 0].max() == 0.0  # nothing outside the fan
    back = pre.letterbox.mask_to_original(pre.valid_mask, (640, 480))
    assert mask_iou(back, fan) > 0.95
    assert pre.pixel_spacing_mm is None and pre.spacing_source is None
    assert UNKNOWN_SPACING_WARNING in pre.warnings


def test_dicom_spacing_wins() -> None:
    img, _, _ = speckle_frame()
    pre = preprocess_frame(Frame(pixels=img, source="x.dcm", pixel_spacing_mm=(0.2, 0.25)), PreprocessConfig())
    assert pre.pixel_spacing_mm == (0.2, 0.25) and pre.spacing_source == "dicom"
    assert not any("spacing" in w for w in pre.warnings)


def test_fan_cache_reuses_per_device_and_size() -> None:
    img, _, _ = speckle_frame()
    cache = FanCache()
    cfg = PreprocessConfig()
    a = preprocess_frame(Frame(pixels=img, source="clip.mp4", frame_index=0), cfg, cache)
    b = preprocess_frame(Frame(pixels=img, source="clip.mp4", frame_index=1), cfg, cache)
    assert cache.misses == 1 and cache.hits == 1
    assert a.fan_polygon_px == b.fan_polygon_px
    other, _, _ = speckle_frame(800, 600, seed=1)
    preprocess_frame(Frame(pixels=other, source="clip.mp4", frame_index=2), cfg, cache)
    assert cache.misses == 2


def test_no_crop_uses_whole_image() -> None:
    img, _, _ = speckle_frame(640, 480)
    pre = preprocess_frame(Frame(pixels=img, source="a"), PreprocessConfig(input_size_px=64, crop_to_fan=False))
    assert (pre.letterbox.crop_w, pre.letterbox.crop_h) == (640, 480)


def test_normalisation_options() -> None:
    img, _, _ = speckle_frame()
    for method in ("percentile", "clahe", "none"):
        for filt in ("none", "median", "guided"):
            pre = preprocess_frame(Frame(pixels=img, source="a"), PreprocessConfig(normalise=method, speckle_filter=filt, gamma=0.8))
            inside = pre.image[pre.valid_mask > 0]
            assert 0.0 <= inside.min() and inside.max() <= 1.0 and inside.std() > 0.02
