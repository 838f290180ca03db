"""Image-derived liver background: measures on constructed images, grading of simulated livers,
examination summary, case rules and report wording."""

from __future__ import annotations

import numpy as np
import pytest
from test_pipeline import _fan_image, tiny_model_dir  # noqa: F401 - shared fixture

from livus.infer.case import assess_case, load_case_rules
from livus.infer.liver_background import (
    FEATURES,
    LiverBackground,
    examination_background,
    frame_background,
    liver_measures,
    load_background_model,
    polygon_to_mask,
    result_background,
)
from livus.report.background_text import background_line
from livus.types import Assessability, FrameResult, Lesion, PatientBackground

SPACING = 0.4  # mm per pixel: the work grid, so no resampling in the constructed images


def _speckle(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    env = np.abs(rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    return cv2.GaussianBlur((20 * np.log10(env + 1e-3)).astype(np.float32), (0, 0), 1.2)


def _image(slope_per_row: float = 0.0, surface_wave_px: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 300x300 'liver' below a wall band, grey falling with depth, a bright capsule line whose
    depth waves by ``surface_wave_px``; returns (image, liver mask)."""
    h, w = 300, 300
    rows = np.arange(h)[:, None].astype(np.float32)
    img = 80 + 6 * _speckle((h, w), seed) + slope_per_row * (rows - 60)
    cols = np.arange(w)
    top = (60 + surface_wave_px * np.sign(np.sin(cols / 6.0))).astype(int)
    liver = rows >= top[None, :]
    for c in cols:
        img[top[c] - 1:top[c] + 2, c] = 200
    img[rows[:, 0] < 20] = 0  # above the fan
    return np.clip(img, 0, 255).astype(np.uint8), liver & (rows >= 20)


def test_attenuation_slope_follows_the_image() -> None:
    flat, liver = _image(0.0)
    falling, _ = _image(-0.2)  # -0.2 grey per row = -5 grey per cm at 0.4 mm/px
    m0, _ = liver_measures(flat, liver, flat > 0, SPACING)
    m1, _ = liver_measures(falling, liver, falling > 0, SPACING)
    assert set(m0) == set(FEATURES)
    assert abs(m0["atten_slope_grey_per_cm"]) < 1.0
    assert -6.0 < m1["atten_slope_grey_per_cm"] < -4.0
    assert m1["deep_minus_shallow"] < -25


def test_surface_roughness_and_view() -> None:
    smooth, liver_s = _image(surface_wave_px=0.0)
    wavy, liver_w = _image(surface_wave_px=6.0)
    rs, _ = liver_measures(smooth, liver_s, smooth > 0, SPACING)
    rw, _ = liver_measures(wavy, liver_w, wavy > 0, SPACING)
    assert rs["surface_in_view"] == 1.0 and rw["surface_in_view"] == 1.0
    assert rw["surface_roughness_mm"] > 0.5 and rs["surface_roughness_mm"] < 0.2, (rw, rs)
    # the liver starts at the top of the fan: its surface is not in view
    fan = np.ones_like(liver_s)
    top_liver = np.ones_like(liver_s)
    m, _ = liver_measures(smooth, top_liver, fan, SPACING)
    assert m["surface_in_view"] == 0.0 and np.isnan(m["surface_roughness_mm"])


def test_not_assessed_without_enough_liver() -> None:
    img, liver = _image()
    assert frame_background(img, None).reason == "no_liver_outline"
    tiny = np.zeros_like(liver)
    tiny[100:110, 100:110] = True
    b = frame_background(img, tiny, spacing_mm=SPACING)
    assert not b.assessed and b.reason == "liver_too_small"
    assert background_line(b, "zh") == "未评估：显示的肝脏过少"
    with pytest.raises(ValueError):
        liver_measures(img, liver[:10], None, SPACING)


def test_spacing_unknown_is_assumed_and_said() -> None:
    img, liver = _image()
    b = frame_background(img, liver, img > 0, None)
    assert b.assessed and b.spacing_assumed and b.to_json_dict()["spacing_assumed"] is True


@pytest.fixture(scope="module")
def simulated() -> dict[str, LiverBackground]:
    from livus.simulate.diffuse import DiffuseSpec
    from livus.simulate.profiles import get_profile
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache, simulate_still

    geom = GeometryCache().get(get_profile("vistara_c6"))
    model = load_background_model()
    out = {}
    for name, spec in (("normal", DiffuseSpec()), ("severe_steatosis", DiffuseSpec(steatosis_grade=3)),
                       ("cirrhosis", DiffuseSpec(fibrosis_grade=4))):
        rng = np.random.default_rng(3)
        sim = simulate_still(rng, geom, scene=sample_scene(rng, geom, "normal", diffuse=spec))
        liver = polygon_to_mask(sim.liver_polygon, sim.clean.shape)
        out[name] = frame_background(sim.clean, liver, geom.fan_mask > 0, geom.spacing_mm, model=model)
    return out


def test_simulated_grades_are_ordered(simulated) -> None:
    """Same anatomy and speckle draw: severe steatosis is graded above the normal liver, and the
    cirrhotic liver gets a higher cirrhosis probability than the normal one."""
    order = ("none", "mild", "moderate", "severe")
    n, s, c = simulated["normal"], simulated["severe_steatosis"], simulated["cirrhosis"]
    assert order.index(s.steatosis) > order.index(n.steatosis)
    assert s.steatosis_probs["severe"] > n.steatosis_probs["severe"]
    assert c.cirrhosis_probability > n.cirrhosis_probability
    for b in (n, s, c):
        assert abs(sum(b.steatosis_probs.values()) - 1) < 1e-6 and abs(sum(b.fibrosis_probs.values()) - 1) < 1e-6


def test_examination_averages_assessed_frames(simulated) -> None:
    n, c = simulated["normal"], simulated["cirrhosis"]
    exam = examination_background([n, c, LiverBackground(reason="no_liver_outline")])
    assert exam.frames == 2
    for k in c.fibrosis_probs:
        assert exam.fibrosis_probs[k] == pytest.approx((n.fibrosis_probs[k] + c.fibrosis_probs[k]) / 2)
    none = examination_background([LiverBackground(reason="no_liver_outline")])
    assert not none.assessed and none.reason == "no_liver_outline"
    d = exam.to_json_dict()
    back = LiverBackground.from_json_dict(d)
    assert back.steatosis == exam.steatosis and back.fibrosis_probs == pytest.approx(d["fibrosis_probs"], abs=1e-4)


def test_result_background_excludes_lesions_and_reads_spacing() -> None:
    img, liver = _image(-0.1)
    ys, xs = np.nonzero(liver)
    poly = [[20, 30], [280, 30], [280, 290], [20, 290]]
    res = FrameResult("x.png", 0, (300, 300), pixel_spacing_mm=(SPACING, SPACING), liver_polygon_px=poly)
    res.lesions = [Lesion(1, 0.9, (150.0, 150.0), 40, 40, 0.0, polygon_px=[[130, 130], [170, 130], [170, 170], [130, 170]])]
    b = result_background(img, res, (img > 0).astype(np.uint8))
    assert b.assessed and not b.spacing_assumed
    assert result_background(img, FrameResult("x.png", 0, (300, 300))).reason == "no_liver_outline"


def _cirrhotic(p: float = 0.85) -> LiverBackground:
    return LiverBackground("moderate", {"none": 0.1, "mild": 0.2, "moderate": 0.6, "severe": 0.1}, "cirrhosis",
                           {"none": 0.05, "fibrosis": 1 - p - 0.05, "cirrhosis": p}, "nodular")


def test_case_rule_image_suggests_cirrhosis() -> None:
    rules = load_case_rules()
    res = assess_case("c", [], PatientBackground(), rules, language="zh", image_background=_cirrhotic())
    assert res.rules[0] == "image_suggests_cirrhosis" and res.follow_up_months == 6
    assert res.reasons[0].startswith("影像提示肝硬化可能，请结合临床确认")
    assert "诊断" in res.reasons[0]  # says it is not a diagnosis
    plain = assess_case("c", [], PatientBackground(), rules, language="en")
    assert plain.rules == ["no_finding"] and plain.risk < res.risk
    # the JSON form (e.g. read back from case.json) works the same
    as_dict = assess_case("c", [], PatientBackground(), rules, image_background=_cirrhotic().to_json_dict())
    assert as_dict.rules[0] == "image_suggests_cirrhosis"
    # low probability: not a signal; known cirrhosis: the patient's history decides
    low = assess_case("c", [], PatientBackground(), rules, image_background=_cirrhotic(0.3))
    assert low.rules == ["no_finding"]
    known = assess_case("c", [], PatientBackground(cirrhosis=True), rules, image_background=_cirrhotic())
    assert known.rules[0] == "at_risk_surveillance"


def test_case_with_lesion_lists_the_image_signal_as_a_finding_only() -> None:
    from livus.types import LesionTrack

    rules = load_case_rules()
    track = LesionTrack(track_id=1, source="x", malignancy=0.2, long_axis_mm=14.0)
    res = assess_case("c", [track], PatientBackground(), rules, language="en", image_background=_cirrhotic())
    assert res.rules[0] == "large_nodule" and "image_suggests_cirrhosis" in res.rules
    assert any("also: image suggests cirrhosis: confirm" in r for r in res.reasons)


def test_not_assessable_case_carries_no_background() -> None:
    res = assess_case("c", [], PatientBackground(), load_case_rules(), language="zh",
                      assessability=Assessability("not_assessable", ["blank"]), image_background=_cirrhotic())
    assert res.liver_background is None and res.rules == []
    assert res.to_json_dict()["liver_background"] is None


def test_report_wording_and_case_json() -> None:
    import json

    from livus.report.content import build_report_content

    bg = _cirrhotic()
    zh = background_line(bg, "zh")
    assert zh.startswith("脂肪肝 中度（置信度 0.60）；影像提示肝硬化可能（置信度 0.85）；影像推断")
    assert "非诊断结论" in zh and "肝表面" not in zh  # the surface label is not printed (see the docs)
    en = background_line(bg, "en")
    assert en.startswith("steatosis, moderate (confidence 0.60); image suggests cirrhosis (confidence 0.85)")
    # below the cirrhosis threshold: no fibrosis class printed, only "no definite signs"
    low = background_line(_cirrhotic(0.3), "zh")
    assert "未见明确肝硬化征象" in low and "肝纤维化征象" not in low and "不能可靠评估肝纤维化" in low
    case = assess_case("c", [], PatientBackground(hbv=True), load_case_rules(), language="zh", image_background=bg)
    doc = json.loads(json.dumps(case.to_json_dict(), ensure_ascii=False))
    assert doc["liver_background"]["fibrosis"] == "cirrhosis" and doc["patient"]["hbv"] is True
    content = build_report_content(case, [], None, "zh")
    rows = dict(content.background)
    assert rows["影像推断肝脏背景"] == zh and "乙肝 (HBV)" in rows  # next to the patient's history


def test_analyze_writes_the_background_and_skips_not_assessable(tmp_path) -> None:
    """`livus analyze` with the bundled models: the example liver gets a background in
    results.jsonl, case.json and the zh report; a noise image (not assessable) gets none."""
    import json
    import shutil
    from pathlib import Path

    import cv2

    from livus.infer.pipeline import analyze_paths

    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(root / "examples" / "normal_liver.png", src / "liver.png")
    cv2.imwrite(str(src / "noise.png"), np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8))
    (tmp_path / "cfg.yaml").write_text("analyze: {gradcam: false}\n")
    out = tmp_path / "out"
    analyze_paths([src], out, config_path=tmp_path / "cfg.yaml", model_dir=root / "models", progress=False,
                  language="zh", overlays=False)
    recs = {Path(r["source"]).stem: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert recs["liver"]["liver_background"]["assessed"] is True
    assert "liver_background" not in recs["noise"]
    case = json.loads((out / "cases" / "liver" / "case.json").read_text(encoding="utf-8"))
    assert case["liver_background"]["steatosis"] in ("none", "mild", "moderate", "severe")
    assert case["liver_background"]["frames"] == 1
    html = next((out / "cases" / "liver").glob("report_*_zh.html")).read_text(encoding="utf-8")
    assert "影像推断肝脏背景" in html and "非诊断结论" in html
    noise = json.loads((out / "cases" / "noise" / "case.json").read_text(encoding="utf-8"))
    assert noise["liver_background"] is None
    assert "影像推断肝脏背景" not in next((out / "cases" / "noise").glob("report_*_zh.html")).read_text(encoding="utf-8")


def test_degenerate_inputs_are_not_assessed_never_an_error() -> None:
    """A black liver, a liver covered by a lesion, a one-row liver: 'not assessed', no exception."""
    img, liver = _image()
    black = np.zeros_like(img)
    assert not frame_background(black, liver, None, SPACING).assessed
    assert not frame_background(img, liver, img > 0, SPACING, exclude=liver).assessed
    row = np.zeros_like(liver)
    row[150, :] = True
    assert not frame_background(img, row, img > 0, SPACING).assessed


def test_a_few_row_fan_does_not_blow_up_the_working_image() -> None:
    """A dark contrast frame's fan search may find a few rows only: the working scale stays bounded
    (it once made a 20000-pixel image and minutes per frame)."""
    from livus.infer.liver_background import SCALE_RANGE, work_scale

    fan = np.zeros((240, 320), bool)
    fan[100:106, 50:270] = True
    s, assumed = work_scale((240, 320), fan, None)
    assert assumed and s <= 2 * work_scale((240, 320), None, None)[0]  # at most the half-height depth
    assert work_scale((240, 320), np.ones((10, 10), bool), None)[0] == work_scale((240, 320), None, None)[0]  # wrong shape ignored
    assert work_scale((240, 320), None, 100.0)[0] == SCALE_RANGE[1] and work_scale((240, 320), None, 1e-4)[0] == SCALE_RANGE[0]


def test_the_background_can_be_switched_off(tiny_model_dir) -> None:  # noqa: F811 - pytest fixture
    """``analyze.liver_background: false`` (frame rate before the background): no background computed."""
    from livus.config import LivusConfig
    from livus.infer.frame import FrameAnalyzer
    from livus.types import Frame

    img = _fan_image()
    cfg = LivusConfig()
    on = FrameAnalyzer(cfg, tiny_model_dir).analyze(Frame(img, source="a.png")).result
    cfg.analyze.liver_background = False
    off = FrameAnalyzer(cfg, tiny_model_dir).analyze(Frame(img, source="a.png")).result
    assert off.liver_background is None
    assert on.liver_background is not None or not on.assessability.usable
