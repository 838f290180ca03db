"""Diffuse liver disease in the simulator: labels, the changes each grade makes, default output kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livus.shapes import polygon_mask
from livus.simulate.dataset import simulate_dataset
from livus.simulate.diffuse import DiffuseSpec, parse_mix, sample_diffuse_spec
from livus.simulate.profiles import get_profile
from livus.simulate.scenes import sample_scene
from livus.simulate.still import GeometryCache, simulate_still

SMALL = (384, 288)


def _liver_pixels(spec: DiffuseSpec, seed: int, profile: str = "sonora_c5") -> tuple[np.ndarray, np.ndarray]:
    geom = GeometryCache().get(get_profile(profile), SMALL)
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, geom, "normal", diffuse=spec)
    scene.vessels, scene.gallbladder, scene.kidney, scene.ribs = [], None, None, []
    sim = simulate_still(rng, geom, scene=scene)
    liver = polygon_mask(sim.liver_polygon, geom.width, geom.height) > 0
    return sim.clean, liver


def test_parse_mix() -> None:
    assert parse_mix("fibrosis:4=2,none") == {"fibrosis:4": 2.0, "none": 1.0}
    assert abs(sum(parse_mix("default").values()) - 1) < 1e-9
    for bad in ("gallstones=1", "fibrosis:5=1", "steatosis=x", "none=0"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_sampled_grades_follow_the_mix() -> None:
    rng = np.random.default_rng(0)
    specs = [sample_diffuse_spec(rng, parse_mix("fibrosis:4=1")) for _ in range(5)]
    assert all(s.fibrosis_grade == 4 and s.liver_state == "cirrhosis" for s in specs)
    specs = [sample_diffuse_spec(rng, parse_mix("steatosis")) for _ in range(60)]
    assert {s.steatosis_grade for s in specs} == {1, 2, 3}
    with pytest.raises(ValueError):
        DiffuseSpec(fibrosis_grade=5)


def test_steatosis_brighter_near_darker_deep() -> None:
    """Severe steatosis: brighter shallow liver and a steeper fall of grey with depth than none."""
    def profile(spec: DiffuseSpec) -> tuple[float, float]:
        img, liver = _liver_pixels(spec, 5)
        rows = np.nonzero(liver.any(axis=1))[0]
        top, bottom = rows[0], rows[-1]
        third = (bottom - top) // 3
        shallow = img[top:top + third][liver[top:top + third]].mean()
        deep = img[bottom - third:bottom][liver[bottom - third:bottom]].mean()
        return float(shallow), float(deep - shallow)

    s0, slope0 = profile(DiffuseSpec())
    s3, slope3 = profile(DiffuseSpec(steatosis_grade=3))
    assert s3 > s0 + 10
    assert slope3 < slope0 - 10


def test_fibrosis_grades_coarsen_the_echotexture() -> None:
    """The drawn parenchyma (before speckle) varies more with each fibrosis grade; the
    schistosomal network adds bright bands."""
    from livus.simulate.phantom import evaluate_scene

    geom = GeometryCache().get(get_profile("sonora_c5"), SMALL)

    def spread_db(spec: DiffuseSpec) -> tuple[float, float]:
        rng = np.random.default_rng(1)
        m = evaluate_scene(sample_scene(rng, geom, "normal", diffuse=spec), geom.X, geom.Z)
        e = 20 * np.log10(m.echo[m.liver > 0] + 1e-3)
        return float(np.std(e)), float(np.mean(e > np.median(e) + 4))

    spreads = [spread_db(DiffuseSpec(fibrosis_grade=f))[0] for f in range(5)]
    assert all(b > a for a, b in zip(spreads, spreads[1:])), spreads
    assert spread_db(DiffuseSpec(schistosomal_grade=3))[1] > 2 * spread_db(DiffuseSpec())[1]


def test_dataset_labels_and_no_lesions(tmp_path) -> None:
    ann = simulate_dataset(tmp_path / "d", n=4, profile="vistara_l6", seed=2, diffuse=parse_mix("fibrosis:3=1"),
                           lesion_free=True)
    doc = json.loads(ann.read_text())
    for im in doc["images"]:
        d = im["extra"]["diffuse"]
        assert d["fibrosis"] == "F3" and d["fibrosis_grade"] == 3 and d["cirrhosis"] is False
        assert d["steatosis"] == "none"
        assert im["image_class"] == "normal"
    assert not doc.get("annotations")


def test_default_dataset_has_no_diffuse_labels(tmp_path) -> None:
    ann = simulate_dataset(tmp_path / "d", n=2, profile="vistara_l6", seed=2)
    doc = json.loads(ann.read_text())
    assert all("diffuse" not in im["extra"] for im in doc["images"])


def test_cli_diffuse_and_bad_mix(tmp_path, capsys) -> None:
    from livus.cli import main

    out = tmp_path / "cli"
    assert main(["simulate", "--n", "2", "--profile", "sonora_l9", "--seed", "4", "--out", str(out),
                 "--diffuse", "steatosis:2", "--no-lesions"]) == 0
    doc = json.loads((out / "annotations.json").read_text())
    assert [im["extra"]["diffuse"]["steatosis"] for im in doc["images"]] == ["moderate", "moderate"]
    assert doc["info"]["diffuse_mix"] == {"steatosis:2": 1.0} and doc["info"]["lesion_free"] is True
    assert main(["simulate", "--n", "1", "--out", str(tmp_path / "bad"), "--diffuse", "gallstones"]) == 2
    assert "unknown kind 'gallstones'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # nothing written for a bad mix


def test_lesion_free_share_mixes_hard_negatives_and_lesions(tmp_path) -> None:
    ann = simulate_dataset(tmp_path / "d", n=12, profile="vistara_l6", seed=5, diffuse=parse_mix("fibrosis:2=1"),
                           lesion_free_share=0.5)
    doc = json.loads(ann.read_text())
    classes = [im["image_class"] for im in doc["images"]]
    assert 0 < classes.count("normal") < len(classes)  # both kinds, all in fibrotic livers
    assert all(im["extra"]["diffuse"]["fibrosis_grade"] == 2 for im in doc["images"])
    assert doc["info"]["lesion_free_share"] == 0.5
    with pytest.raises(ValueError, match="lesion_free_share"):
        simulate_dataset(tmp_path / "bad", n=1, lesion_free_share=1.5)


def test_polygonal_network_distance_is_to_the_voronoi_edge() -> None:
    """Two seeds: the septum is their bisector, and the distance to it is exact in mm."""
    from livus.simulate.diffuse import PolygonalNetwork
    from livus.simulate.phantom import CosField

    flat = CosField(np.zeros(0), np.zeros(0), np.zeros(0))  # zero field: no warp, even width
    net = PolygonalNetwork(np.array([[0.0, 0.0], [10.0, 0.0]]), flat, flat, 1.0, flat, 0.3)
    X = np.array([[0.0, 2.0, 5.0, 7.5, 12.0]], np.float32)
    Z = np.full_like(X, 3.0)
    np.testing.assert_allclose(net.edge_distance(X, Z), [[5.0, 3.0, 0.0, 2.5, 7.0]], atol=1e-4)
    np.testing.assert_allclose(net.half_width_factor(X, Z), 1.0)


def test_schistosomal_cells_are_polygons_not_rings() -> None:
    """The network's cells are convex polygons with straight sides: along a straight line
    through the tissue, the septum's distance field is piecewise linear (second difference
    zero away from the septa and cell centres), unlike the zero lines of a smooth field."""
    from livus.simulate.diffuse import draw_diffuse

    d = draw_diffuse(np.random.default_rng(3), DiffuseSpec(schistosomal_grade=3))
    net = d.pattern.network
    assert net is not None and d.pattern.septa is None
    net.warp_mm = 0.0  # the warp only bends the straight sides a little
    x = np.linspace(-60, 60, 2401, dtype=np.float32)[None, :]
    dist = net.edge_distance(x, np.full_like(x, 80.0))[0]
    second = np.abs(np.diff(dist, 2))
    assert np.median(second) < 1e-3  # straight pieces
    assert (dist < 0.05).sum() >= 3  # several septa crossed over 12 cm (cells of 1.5-3 cm)
    band = d.pattern.echo_factor(x, np.full_like(x, 80.0))[0]
    assert band.max() > 1.5 and np.median(band) == pytest.approx(1.0)
