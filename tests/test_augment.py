"""Augmentation keeps labels consistent; copy-paste stays inside liver ∩ fan."""

from __future__ import annotations

import cv2
import numpy as np

from livus.augment import augment_sample, copy_paste_lesion, lesion_ellipses


def _sample(size: int = 128, seed: int = 0):
    rng = np.random.default_rng(seed)
    img = np.clip(rng.rayleigh(0.3, (size, size)), 0, 1).astype(np.float32)
    valid = np.zeros((size, size), np.uint8)
    cv2.circle(valid, (size // 2, size // 2), size // 2 - 4, 1, -1)
    liver = np.zeros_like(valid)
    cv2.ellipse(liver, (size // 2, size // 2 + 5), (size // 3, size // 4), 0, 0, 360, 1, -1)
    lesion = np.zeros_like(valid)
    cv2.ellipse(lesion, (size // 2 - 15, size // 2), (12, 7), 30, 0, 360, 1, -1)
    cv2.circle(lesion, (size // 2 + 20, size // 2 + 10), 6, 2, -1)
    img[lesion == 1] *= 0.3
    img *= valid
    return img, {"lesion": lesion, "liver": liver, "valid": valid}


def test_augment_keeps_masks_aligned_with_image() -> None:
    rng = np.random.default_rng(1)
    for i in range(30):
        img, masks = _sample(seed=i)
        out, m = augment_sample(img, masks, rng)
        assert out.shape == img.shape and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        assert set(m) == set(masks) and all(v.shape == img.shape for v in m.values())
        assert set(np.unique(m["lesion"])) <= {0, 1, 2}  # labels stay labels
        assert out[m["valid"] == 0].max() == 0.0  # nothing outside the fan
        # the dark lesion moved with its mask: darker than its surrounding liver (unless dropped out)
        les = m["lesion"] == 1
        if les.sum() > 30:
            ring = (cv2.dilate(les.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & ~les & (m["valid"] > 0)
            inside, around = out[les], out[ring]
            if (inside > 0).mean() > 0.9 and (around > 0).mean() > 0.9:
                assert inside.mean() < around.mean()


def test_ellipses_follow_the_transformed_mask() -> None:
    img, masks = _sample()
    before = lesion_ellipses(masks["lesion"])
    assert before[1][2] > before[1][3]  # long axis first
    flipped = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in masks.items()}
    after = lesion_ellipses(flipped["lesion"])
    w = img.shape[1]
    assert abs(after[1][0] - (w - 1 - before[1][0])) < 1.0
    assert abs(after[1][2] - before[1][2]) < 1.0
    assert abs(((after[1][4] + before[1][4]) % 180) - 0) < 3 or abs(((after[1][4] + before[1][4]) % 180) - 180) < 3


def test_augment_is_deterministic_for_a_seed() -> None:
    img, masks = _sample()
    a, ma = augment_sample(img, masks, np.random.default_rng(5))
    b, mb = augment_sample(img, masks, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma["lesion"], mb["lesion"])


def test_copy_paste_inside_liver_and_fan() -> None:
    rng = np.random.default_rng(0)
    src, sm = _sample(seed=1)
    for i in range(20):
        dst, dm = _sample(seed=100 + i)
        dm["lesion"][:] = 0
        res = copy_paste_lesion(src, sm["lesion"], 1, dst, dm["lesion"], dm["liver"], dm["valid"], rng)
        assert res is not None
        pasted = res.instance_mask == res.value
        assert pasted.sum() == (sm["lesion"] == 1).sum()
        assert np.all(dm["liver"][pasted] > 0) and np.all(dm["valid"][pasted] > 0)
        # image changed only near the pasted lesion, and the lesion is darker than its ring
        changed = np.abs(res.image - dst) > 1e-6
        near = cv2.dilate(pasted.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
        assert not np.any(changed & ~near)
        ring = (cv2.dilate(pasted.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~pasted
        assert res.image[pasted].mean() < res.image[ring].mean()


def test_copy_paste_refuses_when_it_does_not_fit() -> None:
    rng = np.random.default_rng(0)
    src, sm = _sample()
    dst, dm = _sample(seed=3)
    tiny_liver = np.zeros_like(dm["liver"])
    tiny_liver[60:66, 60:66] = 1
    assert copy_paste_lesion(src, sm["lesion"], 1, dst, dm["lesion"] * 0, tiny_liver, dm["valid"], rng) is None


def test_copy_paste_avoids_existing_lesions() -> None:
    rng = np.random.default_rng(2)
    src, sm = _sample()
    for i in range(10):
        dst, dm = _sample(seed=i)
        res = copy_paste_lesion(src, sm["lesion"], 2, dst, dm["lesion"], dm["liver"], dm["valid"], rng)
        if res is None:
            continue
        assert res.value == 3
        assert np.all(res.instance_mask[dm["lesion"] > 0] == dm["lesion"][dm["lesion"] > 0])
