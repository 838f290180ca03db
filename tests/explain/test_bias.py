"""Attention bias check: energy outside the fan / on overlays."""

from __future__ import annotations

import numpy as np
import pytest

from livus.explain.bias import attention_bias


def test_heat_inside_fan_not_flagged():
    fan = np.zeros((50, 50), np.uint8)
    fan[10:40, 10:40] = 1
    heat = np.zeros((50, 50))
    heat[20:30, 20:30] = 1.0
    r = attention_bias(heat, fan, None)
    assert r.outside_fan == 0.0 and r.on_overlay == 0.0 and not r.flagged


def test_heat_outside_fan_and_on_overlay_flagged():
    fan = np.zeros((50, 50), np.uint8)
    fan[10:40, 10:40] = 1
    overlay = np.zeros((50, 50), np.uint8)
    overlay[0:5, 0:20] = 1
    heat = np.zeros((50, 50))
    heat[20:30, 20:30] = 1.0  # 100 units inside
    heat[0:5, 0:10] = 2.0  # 100 units outside the fan, on the overlay
    r = attention_bias(heat, fan, overlay, threshold=0.3)
    assert r.outside_fan == pytest.approx(0.5) and r.on_overlay == pytest.approx(0.5)
    assert r.flagged
    assert r.to_json_dict()["flagged"] is True


def test_empty_heat_and_shape_mismatch():
    assert not attention_bias(np.zeros((5, 5)), np.zeros((5, 5))).flagged
    with pytest.raises(ValueError):
        attention_bias(np.ones((5, 5)), np.ones((4, 5)))
