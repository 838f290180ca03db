"""Kidney and gallbladder lie against the liver's deep border as real views show them, never
enclosed by liver tissue like a focal lesion (issue 21: enclosed, they were lesion look-alikes
that the diffuse-liver benchmark counted as false positives)."""

from __future__ import annotations

import numpy as np
import pytest

from livus.simulate.profiles import PROFILES
from livus.simulate.scenes import deep_border_depth, place_gallbladder, place_kidney, sample_anatomy
from livus.simulate.still import GeometryCache

CONVEX = [n for n, p in PROFILES.items() if p.probe != "linear"]


def _outline_in_liver(scene, organ) -> float:
    """Share of the organ's outline inside the liver (the organ not yet in ``scene``)."""
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    c, s = np.cos(np.radians(organ.angle_deg)), np.sin(np.radians(organ.angle_deg))
    x = organ.cx + organ.a * np.cos(t) * c - organ.b * np.sin(t) * s
    z = organ.cz + organ.a * np.cos(t) * s + organ.b * np.sin(t) * c
    return float(scene.in_liver(x, z).mean())


@pytest.mark.parametrize("name", CONVEX[:3])
def test_kidney_behind_liver_and_gallbladder_at_its_border(name: str) -> None:
    geom = GeometryCache().get(PROFILES[name])
    rng = np.random.default_rng(7)
    kidneys = gallbladders = 0
    for _ in range(12):
        scene = sample_anatomy(rng, geom, "normal")
        scene.gallbladder = scene.kidney = None
        kidney = place_kidney(rng, scene, geom)
        if kidney is not None:
            kidneys += 1
            border = deep_border_depth(scene, kidney.cx, 3 * geom.profile.depth_mm)
            assert border is not None and kidney.cz > border  # centre beyond the liver
            assert border < geom.profile.depth_mm  # the border is in view
            assert _outline_in_liver(scene, kidney) < 0.5
            assert geom.in_fan_mm(np.asarray([kidney.cx]), np.asarray([kidney.cz])).all()
        gb = place_gallbladder(rng, scene, geom)
        if gb is not None:
            gallbladders += 1
            share = _outline_in_liver(scene, gb)
            assert 0.0 < share < 0.8  # touches the liver, never wrapped all round
    assert kidneys >= 8 and gallbladders >= 8


def test_deep_border_depth_of_a_known_ellipse() -> None:
    geom = GeometryCache().get(PROFILES[CONVEX[0]])
    scene = sample_anatomy(np.random.default_rng(0), geom, "normal")
    d = scene.diaphragm
    scene.diaphragm = type(d)(0.0, 10.0, 200.0, 50.0, 0.0)
    assert deep_border_depth(scene, 0.0, 200.0) == pytest.approx(60.0, abs=0.5)
    assert deep_border_depth(scene, 0.0, 40.0) is None  # liver goes deeper than asked
