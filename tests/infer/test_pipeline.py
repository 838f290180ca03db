"""End-to-end batch analysis on small generated inputs (a tiny untrained detector)."""

import csv
import json

import cv2
import numpy as np
import pytest

from fan_fakes import speckle_fan

from livus.config import DetectorConfig
from livus.infer.frame import FrameAnalyzer
from livus.infer.pipeline import analyze_paths
from livus.models.detector import LesionDetector, save_detector
from livus.types import Frame


def _fan_image(w=640, h=480, seed=0, blob=True):
    """A grey convex fan with speckle-like noise and a dark round 'lesion'."""
    img = speckle_fan(w, h, seed)
    if blob:
        cv2.circle(img, (w // 2, h // 2 + 40), 30, 10, -1)
    return img


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    cfg = DetectorConfig(encoder="resnet_lite", widths=(8, 16, 16, 32), fpn_channels=16, input_size_px=128, score_threshold=0.0,
                          candidate_threshold=0.0, decode_mode="heatmap")  # untrained: peaks always exist
    import torch

    torch.manual_seed(0)
    save_detector(LesionDetector(cfg), d / "detector.pt", {"version": "test-0"})
    from livus.config import ClassifierConfig
    from livus.models.classifier import LesionClassifier, save_classifier

    save_classifier(LesionClassifier(ClassifierConfig(encoder="resnet_lite", widths=(8, 16, 16), crop_size_px=48)), d / "classifier.pt",
                    {"version": "ctest-0"})
    return d


def test_frame_analyzer_maps_to_original_pixels(tiny_model_dir):
    an = FrameAnalyzer(model_dir=tiny_model_dir)
    frame = Frame(_fan_image(), source="x.png", pixel_spacing_mm=(0.2, 0.2))
    res = an.analyze(frame).result
    assert res.model["version"] == "test-0"
    assert res.image_size_px == (640, 480)
    assert res.fan_polygon_px and len(res.fan_polygon_px) >= 3
    for les in res.lesions:  # untrained model: any number, but coordinates must be in the image
        assert -1 <= les.center_px[0] <= 640 and -1 <= les.center_px[1] <= 480
        assert les.long_axis_mm == pytest.approx(les.long_axis_px * 0.2, rel=0.35)
    d = json.loads(json.dumps(res.to_json_dict()))
    assert d["schema"] == "livus.result/1"
    assert res.model["classifier_version"] == "ctest-0"
    assert res.lesions, "score threshold 0 keeps the untrained model's peaks"
    for les in res.lesions:
        assert 0.0 <= les.malignancy <= 1.0 and les.features
    assert sum(res.image_label.values()) == pytest.approx(1.0)


def test_gradcam_heatmap_lies_on_the_lesions(tiny_model_dir):
    an = FrameAnalyzer(model_dir=tiny_model_dir)
    fa = an.analyze(Frame(_fan_image(), source="x.png"))
    heat = an.explain(fa)
    assert heat.shape == (480, 640) and 0.0 <= heat.min() and heat.max() <= 1.0
    les = fa.result.lesions[0]
    assert heat.max() > 0
    from livus.preprocess.crops import crop_box_for_bbox

    cfg = an._torch_classifier.cfg
    far = np.ones_like(heat, bool)  # heat only inside the lesions' crops (the crop rule's squares)
    for l2 in fa.result.lesions:
        x0, y0, x1, y1 = crop_box_for_bbox(l2.bbox_px, cfg.margin, cfg.min_side_px).xyxy
        far[max(0, int(y0) - 1):int(y1) + 2, max(0, int(x0) - 1):int(x1) + 2] = False
    assert far.any() and heat[far].max() == 0
    assert "bias" in les.explanation and "outside_fan" in les.explanation["bias"]


def test_analyze_batch_with_bad_inputs(tmp_path, tiny_model_dir):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        cv2.imwrite(str(src / f"img{i}.png"), _fan_image(seed=i))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "notes.png").write_text("hello")
    out = tmp_path / "out"
    s = analyze_paths([src, tmp_path / "missing.png"], out, model_dir=tiny_model_dir, progress=False, language="en")
    assert s.n_frames == 2
    assert len(s.errors) == 3
    assert any("broken.jpg" in e for e in s.errors) and any("missing.png" in e for e in s.errors)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["schema"] == "livus.result/1" for x in lines)
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["source"] for r in rows} == {str(src / "img0.png"), str(src / "img1.png")}
    case_dirs = sorted((out / "cases").iterdir())
    assert [p.name for p in case_dirs] == ["img0", "img1"]
    case = json.loads((case_dirs[0] / "case.json").read_text())
    assert case["priority"] in ("routine", "soon", "urgent") and case["reasons"]
    assert list(case_dirs[0].glob("overlay_*.png"))
    assert list(case_dirs[0].glob("*.pdf")) and list(case_dirs[0].glob("*.html"))
    assert sorted(p.rsplit(".", 1)[1] for p in s.reports) == ["html", "html", "pdf", "pdf"]
    assert len(s.overlays) == 2


def test_analyze_without_model_warns(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), _fan_image())
    s = analyze_paths([tmp_path / "a.png"], tmp_path / "out", model_dir=tmp_path / "nomodel", progress=False)
    rec = json.loads((tmp_path / "out" / "results.jsonl").read_text())
    assert s.n_frames == 1 and rec["lesions"] == []
    assert any("no detector model" in w for w in rec["warnings"])
    case = json.loads((tmp_path / "out" / "cases" / "a" / "case.json").read_text())
    assert case["priority"] is None and case["follow_up_months"] is None and case["warnings"]


def test_nothing_analysable_is_an_error(tmp_path):
    (tmp_path / "x.png").write_text("nope")
    from livus.cli import main

    assert main(["analyze", str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 1


def test_dicom_input_gets_a_matching_sr(tmp_path, tiny_model_dir):
    import pydicom

    from livus.io.dicom_write import write_us_dicom
    from livus.report.dicom_sr import read_sr_measurements

    write_us_dicom(tmp_path / "in.dcm", [_fan_image()], (0.25, 0.25), {"name": "TEST^ONE", "id": "P1"})
    s = analyze_paths([tmp_path / "in.dcm"], tmp_path / "out", model_dir=tiny_model_dir, progress=False)
    assert s.n_frames == 1
    rec = json.loads((tmp_path / "out" / "results.jsonl").read_text())
    assert rec["pixel_spacing_mm"] == [0.25, 0.25]
    srs = list((tmp_path / "out" / "cases").glob("*/sr_*.dcm"))  # one SR per series
    assert len(srs) == 1
    groups = [g for g in read_sr_measurements(pydicom.dcmread(srs[0])) if g]  # an empty group = "no lesion"
    assert len(groups) == len(rec["lesions"])
    for g, les in zip(groups, rec["lesions"]):
        assert g["long_axis"][0] == pytest.approx(les["long_axis_mm"], abs=0.01)


def test_quality_gate_marks_noise_and_skips_models(tmp_path, tiny_model_dir):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "noise.png"), rng.integers(0, 256, (480, 640), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "fan.png"), _fan_image())
    s = analyze_paths([tmp_path], tmp_path / "out", model_dir=tiny_model_dir, progress=False)
    recs = {json.loads(x)["source"].split("/")[-1]: json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()}
    assert recs["noise.png"]["quality"]["verdict"] == "not_ultrasound"
    assert recs["noise.png"]["lesions"] == [] and any("low-quality" in w for w in recs["noise.png"]["warnings"])
    assert s.n_low_quality >= 1
    rows = {r["source"].split("/")[-1]: r for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))}
    assert rows["noise.png"]["quality"] == "not_ultrasound"


def _simulated_clip(path, seed=1, n_frames=10, size=(320, 240)):
    """A small simulated B-mode sweep written as MJPG AVI; returns the simulator's per-frame
    quality labels (good / shadowed / out_of_liver)."""
    from livus.simulate.clips import simulate_bmode_clip
    from livus.simulate.profiles import get_profile
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache
    from livus.simulate.video import write_video

    rng = np.random.default_rng(seed)
    geom = GeometryCache().get(get_profile("sonora_c5"), size)
    frames = simulate_bmode_clip(rng, geom, sample_scene(rng, geom, "benign"), n_frames, 10.0, None)
    write_video(path, [f.image for f in frames], 10.0, quality=95)
    return [str(f.extra["quality"]) for f in frames]


def test_clip_quality_gate_marks_off_liver_frames(tmp_path, tiny_model_dir):
    from livus.io.readers import read_frames
    from livus.preprocess.quality import assess_quality

    labels = _simulated_clip(tmp_path / "clip.avi")
    off = [i for i, q in enumerate(labels) if q == "out_of_liver"]
    assert off == [8, 9]  # the probe slides off the liver at the end of this sweep
    # the single-frame gate alone passes at least one of them: the clip gate is what catches it
    frames = list(read_frames(tmp_path / "clip.avi"))
    assert any(assess_quality(frames[i]).ok for i in off)
    (tmp_path / "cfg.yaml").write_text("analyze: {keyframe_mode: interval, keyframe_interval: 1, gradcam: false, write_overlays: false}\n")
    s = analyze_paths([tmp_path / "clip.avi"], tmp_path / "out", config_path=tmp_path / "cfg.yaml",
                      model_dir=tiny_model_dir, progress=False, language="en")
    recs = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["frame_index"] for r in recs] == list(range(10))
    for i in off:
        assert recs[i]["quality"]["verdict"] == "liver_not_in_view" and not recs[i]["quality"]["ok"]
        assert any("low-quality" in w for w in recs[i]["warnings"])
        assert "clip_band_to_near" in recs[i]["quality"]["measures"]  # judged against the clip's reference
    assert recs[0]["quality"]["ok"]
    n_bad = sum(not r["quality"]["ok"] for r in recs)
    assert s.n_clip_frames == 10 and s.n_clip_frames_low_quality == n_bad and s.n_low_quality == n_bad
    rows = list(csv.DictReader(open(tmp_path / "out" / "summary.csv")))
    assert rows[off[0]]["quality"] == "liver_not_in_view"
    case = json.loads((tmp_path / "out" / "cases" / "clip" / "case.json").read_text())
    assert any(f"{n_bad} of 10 clip frames of low quality" in w and "liver not in view" in w for w in case["warnings"])
    for i in off:  # the probe is off the liver there: no lesions from these frames
        assert recs[i]["assessability"] == {"status": "not_assessable", "reasons": ["liver_not_in_view"]}
        assert recs[i]["lesions"] == [] and rows[i]["assessability"] == "not_assessable"
    assert case["assessability"]["status"] == "assessable" and case["priority"]
    assert any("2 frames not assessable" in w for w in case["warnings"])


def test_not_assessable_inputs_get_no_lesions_and_no_advice(tmp_path, tiny_model_dir):
    """A noise image, a colour-Doppler still and an echo-like clip (each a case of its own):
    no lesions, no priority or follow-up, "not assessable" with the reasons, in every output."""
    from assess_fakes import doppler_still, write_echo_like_clip

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "noise.png"), np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8))
    cv2.imwrite(str(src / "doppler.png"), doppler_still(_fan_image()))
    write_echo_like_clip(src / "echo.avi")
    (tmp_path / "cfg.yaml").write_text("analyze: {keyframe_mode: interval, keyframe_interval: 1, gradcam: false}\n")
    out = tmp_path / "out"
    analyze_paths([src], out, config_path=tmp_path / "cfg.yaml", model_dir=tiny_model_dir, progress=False, language="zh")
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 2 + 12
    for r in recs:
        assert r["assessability"]["status"] == "not_assessable" and r["lesions"] == [], r["source"]
    rows = list(csv.DictReader(open(out / "summary.csv", encoding="utf-8")))
    assert {r["assessability"] for r in rows} == {"not_assessable"}
    expected = {"noise": ["not_ultrasound"], "doppler": ["doppler_colour"], "echo": ["not_liver"]}
    for name, reasons in expected.items():
        case = json.loads((out / "cases" / name / "case.json").read_text(encoding="utf-8"))
        assert case["assessability"] == {"status": "not_assessable", "reasons": reasons}
        assert case["lesions"] == [] and case["priority"] is None and case["follow_up_months"] is None
        assert case["risk"] is None and case["rules"] == []
        assert case["reasons"][0].startswith("不可评估：请重复检查或核对输入图像")
        html = next((out / "cases" / name).glob("report_*_zh.html")).read_text(encoding="utf-8")
        assert "不可评估" in html and "图像不可评估，未分析病灶" in html
        assert "紧急" not in html and "未检出病灶" not in html  # no advice, no "no lesion" claim
        assert "low-quality" not in html and "not assessable" not in html  # all Chinese


def test_site_report_threshold_keeps_only_candidates_above_it_and_says_so(tiny_model_dir):
    """``analyze.report_threshold`` replaces the model's threshold: the lesions are exactly the
    candidates scoring at or above it, and the result's model entry names the setting."""
    from livus.config import LivusConfig

    frame = Frame(_fan_image(), source="x.png", pixel_spacing_mm=(0.2, 0.2))
    shipped = FrameAnalyzer(model_dir=tiny_model_dir)
    scores = sorted(les.score for les in shipped.lesion_candidates(frame, 0.0))
    assert len(scores) >= 2
    cut = (scores[0] + scores[-1]) / 2
    cfg = LivusConfig()
    cfg.analyze.report_threshold = cut
    site = FrameAnalyzer(cfg, model_dir=tiny_model_dir)
    res = site.analyze(frame).result
    kept = [s for s in scores if s >= cut]
    assert sorted(les.score for les in res.lesions) == pytest.approx(kept[-len(res.lesions):]) and res.lesions
    assert len(res.lesions) == min(len(kept), site.detector.cfg.max_detections)
    assert res.model["report_threshold"] == f"{cut:.3f}"
    assert "report_threshold" not in shipped.analyze(frame).result.model
    with pytest.raises(ValueError, match="report_threshold"):
        cfg.analyze.report_threshold = 1.5
        cfg.analyze.__post_init__()
