"""Scanner augmentation: range, fan, reproducibility, and that each effect changes the image."""

from __future__ import annotations

import numpy as np

from livus.augment_scanner import ScannerAugmentConfig, scanner_augment


def _image():
    rng = np.random.default_rng(0)
    img = rng.random((96, 96)).astype(np.float32) * 0.6 + 0.2
    valid = np.zeros((96, 96), np.uint8)
    valid[10:90, 15:85] = 1
    return img * valid, valid


def test_range_fan_and_seed():
    img, valid = _image()
    all_on = ScannerAugmentConfig(resample_p=1, tgc_p=1, dynamic_range_p=1, speckle_p=1, blur_p=1, markers_p=1)
    for seed in range(20):
        out = scanner_augment(img, valid, np.random.default_rng(seed), all_on)
        assert out.shape == img.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.all(out[valid == 0] == 0)
    a = scanner_augment(img, valid, np.random.default_rng(3), all_on)
    b = scanner_augment(img, valid, np.random.default_rng(3), all_on)
    assert np.array_equal(a, b)


def test_each_effect_changes_the_image():
    img, valid = _image()
    off = dict(resample_p=0, tgc_p=0, dynamic_range_p=0, speckle_p=0, blur_p=0, sharpen_p=0, markers_p=0)
    same = scanner_augment(img, valid, np.random.default_rng(0), ScannerAugmentConfig(**off))
    assert np.allclose(same, img)
    for name in ("resample_p", "tgc_p", "dynamic_range_p", "speckle_p", "blur_p", "markers_p"):
        out = scanner_augment(img, valid, np.random.default_rng(1), ScannerAugmentConfig(**{**off, name: 1.0}))
        assert np.abs(out - img).max() > 0.05, name
