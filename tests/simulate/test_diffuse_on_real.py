"""Diffuse disease drawn onto a real liver image: where it changes grey levels, and by grade."""

from __future__ import annotations

import numpy as np
import pytest

from livus.simulate.diffuse import DiffuseSpec, apply_diffuse, draw_diffuse
from livus.simulate.diffuse_on_real import diffuse_grey_offset, with_diffuse_disease

S = 128


def _liver() -> np.ndarray:
    m = np.zeros((S, S), np.uint8)
    m[30:110, 20:108] = 1
    return m


def _speckle(seed: int = 0) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).rayleigh(0.2, (S, S)), 0, 1).astype(np.float32)


def test_offset_stays_inside_the_liver_and_spares_kept_lesions():
    liver = _liver()
    lesion = np.zeros_like(liver)
    lesion[60:80, 50:70] = 1
    off = diffuse_grey_offset(np.random.default_rng(1), DiffuseSpec(fibrosis_grade=4), liver, keep_mask=lesion)
    assert off.shape == liver.shape and off.dtype == np.float32
    assert np.all(off[liver == 0] == 0)
    inside_lesion = off[64:76, 54:66]  # away from the feathered border
    around = off[35:55, 25:100]
    assert around.std() > 5 * inside_lesion.std()


def test_empty_liver_gives_no_offset():
    off = diffuse_grey_offset(np.random.default_rng(0), DiffuseSpec(schistosomal_grade=3), np.zeros((S, S), np.uint8))
    assert not off.any()


def test_steatosis_brightens_the_top_and_attenuates_with_depth():
    liver = _liver()
    top, deep = [], []
    for seed in range(8):
        off = diffuse_grey_offset(np.random.default_rng(seed), DiffuseSpec(steatosis_grade=3), liver)
        top.append(off[32:40, 30:100].mean())
        deep.append(off[100:108, 30:100].mean())
    assert np.mean(top) > 0.05
    assert np.mean(deep) < np.mean(top) - 0.05


@pytest.mark.parametrize("kind", ["fibrosis_grade", "schistosomal_grade"])
def test_higher_grades_change_the_texture_more(kind):
    liver = _liver()

    def strength(grade: int) -> float:
        return float(np.mean([diffuse_grey_offset(np.random.default_rng(s), DiffuseSpec(**{kind: grade}), liver)[35:105, 25:100].std()
                              for s in range(6)]))

    assert strength(3) > 1.5 * strength(1)


def test_with_diffuse_disease_keeps_the_image_outside_the_fan_and_in_range():
    image = _speckle()
    liver = _liver()
    fan = np.zeros_like(liver)
    fan[:, :64] = 1
    out = with_diffuse_disease(np.random.default_rng(3), image, DiffuseSpec(steatosis_grade=2, fibrosis_grade=3), liver, fan)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out[:, 64:], image[:, 64:])
    assert not np.array_equal(out[30:110, 20:64], image[30:110, 20:64])


def test_apply_diffuse_sets_one_draw_on_the_scene():
    from livus.simulate.profiles import PROFILES
    from livus.simulate.scenes import sample_anatomy
    from livus.simulate.still import GeometryCache

    spec = DiffuseSpec(fibrosis_grade=4, steatosis_grade=1)
    geom = GeometryCache().get(PROFILES["sonora_c5"])
    scene = sample_anatomy(np.random.default_rng(5), geom, spec.liver_state)
    apply_diffuse(np.random.default_rng(7), scene, spec)
    d = draw_diffuse(np.random.default_rng(7), spec)
    assert (scene.liver_echo, scene.liver_atten, scene.coarse_amp, scene.portal_wall_amp) == (
        d.liver_echo, d.liver_atten, d.coarse_amp, d.portal_wall_amp)
    X, Z = np.meshgrid(np.linspace(-40, 40, 50), np.linspace(10, 120, 50))
    np.testing.assert_allclose(scene.diffuse.echo_factor(X, Z), d.pattern.echo_factor(X, Z))
