"""``livus analyze --workers N`` gives the same outputs, in the same order, for any N (issue 17)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fan_fakes import speckle_fan

from livus.config import ClassifierConfig, DetectorConfig
from livus.infer.pipeline import analyze_paths
from livus.models.classifier import LesionClassifier, save_classifier
from livus.models.detector import LesionDetector, save_detector


def _fan_image(w=320, h=240, seed=0):
    """A grey fan of speckle with a dark round 'lesion'."""
    img = speckle_fan(w, h, seed)
    cv2.circle(img, (w // 2 + 10 * seed, h // 2 + 20), 18, 10, -1)
    return img


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    import torch

    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    cfg = DetectorConfig(encoder="resnet_lite", widths=(8, 16, 16, 32), fpn_channels=16, input_size_px=128, score_threshold=0.0,
                         candidate_threshold=0.0, max_detections=3, decode_mode="heatmap")  # untrained: peaks always exist
    save_detector(LesionDetector(cfg), d / "detector.pt", {"version": "test-0"})
    save_classifier(LesionClassifier(ClassifierConfig(encoder="resnet_lite", widths=(8, 16, 16), crop_size_px=48)), d / "classifier.pt",
                    {"version": "ctest-0"})
    return d


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Stills (two with the same name in two folders: one case of two inputs), a broken file and
    a short B-mode clip."""
    from livus.simulate.clips import simulate_bmode_clip
    from livus.simulate.profiles import get_profile
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache
    from livus.simulate.video import write_video

    src = tmp_path_factory.mktemp("inputs")
    for i in range(2):
        cv2.imwrite(str(src / f"img{i}.png"), _fan_image(seed=i))
    (src / "a").mkdir()
    (src / "b").mkdir()
    cv2.imwrite(str(src / "a" / "same.png"), _fan_image(seed=5))
    cv2.imwrite(str(src / "b" / "same.jpg"), _fan_image(seed=6))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rng = np.random.default_rng(1)
    geom = GeometryCache().get(get_profile("sonora_c5"), (320, 240))
    frames = simulate_bmode_clip(rng, geom, sample_scene(rng, geom, "benign"), 4, 10.0, None)
    write_video(src / "clip.avi", [f.image for f in frames], 10.0, quality=95)
    return src


def _outputs(out):
    """Everything of a run that must not depend on the number of workers (reports carry their
    time of writing, so only their presence is compared)."""
    cases = sorted(p.relative_to(out).as_posix() for p in (out / "cases").rglob("*") if p.is_file())
    case_json = {p: (out / p).read_text(encoding="utf-8") for p in cases if p.endswith("case.json")}
    return {
        "results": (out / "results.jsonl").read_text(encoding="utf-8"),
        "summary": (out / "summary.csv").read_text(encoding="utf-8"),
        "files": cases,
        "case_json": case_json,
    }


def test_results_are_the_same_for_any_number_of_workers(tmp_path, tiny_model_dir, inputs):
    # one torch thread per process: several spinning OpenMP threads per worker on a busy machine
    # make this test crawl (the thread count is the same for every N, as it must be)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("analyze: {threads: 1}\n")
    runs = {}
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}"
        s = analyze_paths([inputs], out, config_path=cfg, model_dir=tiny_model_dir, progress=False, workers=workers,
                          language="zh")
        assert len(s.errors) == 1 and "broken.jpg" in s.errors[0]
        runs[workers] = (_outputs(out), s.reports, [p.replace(str(out), "") for p in s.overlays])
    one = runs[1]
    lines = one[0]["results"].splitlines()
    sources = [json.loads(x)["source"] for x in lines]
    assert sources == sorted(sources, key=lambda p: sources.index(p))  # each input's frames together
    assert len(set(sources)) == 5 and sum(s.endswith("clip.avi") for s in sources) >= 1
    assert any(json.loads(x)["lesions"] for x in lines)
    assert "cases/same/case.json" in one[0]["case_json"]
    # a/same.png and b/same.jpg: one case folder, two overlays (not one overwriting the other)
    assert len(one[2]) == len(set(one[2])) == 5
    assert sum("/cases/same/overlay_same_" in p for p in one[2]) == 2
    assert sum(f.endswith(".pdf") for f in one[0]["files"]) == 4  # 2 stills, 'same' (2 inputs), the clip
    for workers in (2, 3):
        outputs, reports, overlays = runs[workers]
        assert outputs == one[0], workers
        assert [p.split("/w")[-1][1:] for p in reports] == [p.split("/w")[-1][1:] for p in one[1]]
        assert overlays == one[2]
