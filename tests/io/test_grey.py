"""Colour → grey conversion (``livus.io.grey``)."""

from __future__ import annotations

import numpy as np
import pytest

from livus.io.grey import to_grey


def test_bgr_input_gives_the_grey_and_mask_of_its_rgb_order() -> None:
    """A BGR array (OpenCV's order, converted without reordering it: issue 17) gives the same
    grey image and colour mask as the same pixels in RGB order."""
    rng = np.random.default_rng(0)
    rgb = np.repeat(rng.integers(0, 256, (60, 80, 1), dtype=np.uint8), 3, axis=2)
    rgb[10:30, 20:50] = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)  # a colour box
    grey_rgb, mask_rgb = to_grey(rgb, "rgb")
    grey_bgr, mask_bgr = to_grey(np.ascontiguousarray(rgb[..., ::-1]), "bgr")
    assert mask_rgb is not None and mask_rgb[10:30, 20:50].mean() > 0.5 and not mask_rgb[40:].any()
    np.testing.assert_array_equal(grey_bgr, grey_rgb)
    np.testing.assert_array_equal(mask_bgr, mask_rgb)
    bgra = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(to_grey(bgra, "bgr")[0], grey_rgb)
    with pytest.raises(ValueError):
        to_grey(rgb, "hsv")
