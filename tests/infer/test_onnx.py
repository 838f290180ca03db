"""ONNX export / runtime / int8 quantisation of the detector and classifier (tiny random nets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from livus.config import ClassifierConfig, DetectorConfig  # noqa: E402
from livus.infer.onnx import (  # noqa: E402
    export_classifier_onnx,
    export_detector_onnx,
    load_onnx_classifier,
    load_onnx_detector,
    onnx_matches_checkpoint,
    onnx_model_path,
    quantize_classifier_int8,
    quantize_detector_int8,
    read_onnx_metadata,
)
from livus.models.classifier import LesionClassifier, classify_lesions, save_classifier  # noqa: E402
from livus.models.decode import decode_detections  # noqa: E402
from livus.models.detector import LesionDetector, load_detector, save_detector  # noqa: E402
from livus.types import Lesion  # noqa: E402

TINY_DET = DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 24, 32), stem_channels=8, fpn_channels=16, head_channels=8,
                          candidate_threshold=0.0, score_threshold=0.0)
TINY_CLS = ClassifierConfig(encoder="resnet_lite", crop_size_px=32, widths=(8, 16))


def _blobs(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Bright discs on noise, float32 in [0, 1] (a stand-in for preprocessed frames)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = rng.uniform(0.2, 0.4, (n, size, size))
    for i in range(n):
        cx, cy, r = rng.uniform(size * 0.3, size * 0.7, 2).tolist() + [size * 0.1]
        out[i][(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 0.9
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def detector_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[LesionDetector, Path, Path, Path]:
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("onnx_det")
    pt = save_detector(LesionDetector(TINY_DET), tmp / "detector.pt", meta={"version": "test-1"})
    model = load_detector(pt)
    fp32 = export_detector_onnx(model, onnx_model_path(tmp, "detector"), source_checkpoint=pt)
    int8 = quantize_detector_int8(fp32, onnx_model_path(tmp, "detector", "int8"), list(_blobs(8, 64)))
    return model, pt, fp32, int8


def test_detector_onnx_matches_torch_with_dynamic_batch(detector_files) -> None:
    model, _, fp32, _ = detector_files
    runner = load_onnx_detector(fp32, threads=1)
    for batch in (1, 3):
        x = torch.from_numpy(_blobs(batch, 64, seed=batch))[:, None]
        with torch.no_grad():
            ref = model(x)
        out = runner(x)
        assert set(out) == set(ref)
        for k in ref:
            assert out[k].shape == ref[k].shape, k
            assert float((out[k] - ref[k]).abs().max()) <= 1e-4, k
    with pytest.raises(ValueError):
        runner(torch.zeros(1, 1, 32, 32))  # wrong spatial size


def test_mirror_tta_detector_exports_with_its_averaging(tmp_path: Path) -> None:
    """With ``tta_flip`` the ONNX graph itself averages the image and its mirror (dynamic batch)."""
    from dataclasses import replace

    torch.manual_seed(1)
    model = LesionDetector(replace(TINY_DET, tta_flip=True)).eval()
    path = export_detector_onnx(model, tmp_path / "detector.onnx")
    runner = load_onnx_detector(path, threads=1)
    assert runner.cfg.tta_flip
    for batch in (1, 3):
        x = torch.from_numpy(_blobs(batch, 64, seed=10 + batch))[:, None]
        with torch.no_grad():
            ref = model(x)
        out = runner(x)
        for k in ref:
            assert float((out[k] - ref[k]).abs().max()) <= 1e-4, k


def test_detector_runner_carries_config_meta_and_decodes_like_torch(detector_files) -> None:
    model, pt, fp32, _ = detector_files
    runner = load_onnx_detector(fp32, threads=1)
    assert runner.cfg == model.cfg
    assert runner.meta["version"] == "test-1"
    assert runner.eval() is runner and not runner.training
    assert onnx_matches_checkpoint(fp32, pt)
    other = pt.with_name("other.pt")
    other.write_bytes(pt.read_bytes() + b"x")
    assert not onnx_matches_checkpoint(fp32, other)
    x = torch.from_numpy(_blobs(2, 64, seed=5))[:, None]
    with torch.no_grad():
        ref = decode_detections(model(x), model.cfg)
    got = decode_detections(runner(x.numpy()), runner.cfg)
    assert [len(d) for d in got] == [len(d) for d in ref]
    for a, b in zip(sum(got, []), sum(ref, [])):
        assert a.center_px == pytest.approx(b.center_px, abs=1e-3)
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_int8_detector_is_quantised_smaller_and_close(detector_files) -> None:
    model, _, fp32, int8 = detector_files
    meta = read_onnx_metadata(int8)
    assert meta["livus.precision"] == "int8"
    import onnx

    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format
    runner = load_onnx_detector(int8, threads=1)
    x = torch.from_numpy(_blobs(2, 64, seed=9))[:, None]
    with torch.no_grad():
        ref = torch.sigmoid(model(x)["lesion_mask"])
    got = torch.sigmoid(runner(x)["lesion_mask"])
    assert got.shape == ref.shape
    # quantisation noise, not a different network: probabilities stay close and correlated
    assert float((got - ref).abs().mean()) < 0.02
    assert np.corrcoef(got.flatten().numpy(), ref.flatten().numpy())[0, 1] > 0.95


def test_wrong_kind_is_refused(detector_files, tmp_path: Path) -> None:
    _, _, fp32, _ = detector_files
    with pytest.raises(ValueError, match="classifier"):
        load_onnx_classifier(fp32, threads=1)
    with pytest.raises(ValueError):
        onnx_model_path(tmp_path, "detector", "fp16")


def test_classifier_onnx_matches_torch_and_works_in_classify_lesions(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = LesionClassifier(TINY_CLS).eval()
    model.temperature.fill_(1.7)
    pt = tmp_path / "classifier.pt"
    save_classifier(model, pt, meta={"version": "c-1"})
    fp32 = export_classifier_onnx(model, onnx_model_path(tmp_path, "classifier"), source_checkpoint=pt)
    runner = load_onnx_classifier(fp32, threads=1)
    assert runner.feature_names == model.feature_names
    assert float(runner.temperature) == pytest.approx(1.7)
    assert onnx_matches_checkpoint(fp32, pt)
    rng = np.random.default_rng(0)
    for n in (1, 4):
        crops = torch.from_numpy(rng.uniform(0, 1, (n, 2, 32, 32)).astype(np.float32))
        size = torch.from_numpy(rng.normal(size=n).astype(np.float32))
        with torch.no_grad():
            ref = model(crops, size)
        out = runner(crops, size)
        for k in ref:
            assert out[k].shape == ref[k].shape
            assert float((out[k] - ref[k]).abs().max()) <= 1e-4
    # drop-in for classify_lesions (which reads .cfg, .temperature, .feature_names)
    image = (rng.uniform(0, 255, (120, 160))).astype(np.uint8)
    lesions = [Lesion(id=1, score=0.9, center_px=(80.0, 60.0), long_axis_px=30.0, short_axis_px=20.0, angle_deg=10.0)]
    a = classify_lesions(model, image, lesions)
    b = classify_lesions(runner, image, lesions)
    assert b[0]["malignancy"] == pytest.approx(a[0]["malignancy"], abs=1e-5)
    assert set(b[0]["features"]) == set(a[0]["features"])
    # static int8
    int8 = quantize_classifier_int8(fp32, onnx_model_path(tmp_path, "classifier", "int8"),
                                    list(rng.uniform(0, 1, (8, 2, 32, 32)).astype(np.float32)), rng.normal(size=8))
    q = load_onnx_classifier(int8, threads=1)
    assert q.precision == "int8" and q.feature_names == model.feature_names
    crops = torch.from_numpy(rng.uniform(0, 1, (6, 2, 32, 32)).astype(np.float32))
    size = torch.from_numpy(rng.normal(size=6).astype(np.float32))
    with torch.no_grad():
        p_ref = torch.sigmoid(model(crops, size)["malignancy"])
    p_q = torch.sigmoid(q(crops, size)["malignancy"])
    assert float((p_q - p_ref).abs().max()) < 0.05


def test_load_model_for_inference_prefers_matching_onnx_and_falls_back(detector_files, tmp_path: Path) -> None:
    import shutil

    from livus.infer.onnx import OnnxDetector, load_model_for_inference

    _, pt, fp32, int8 = detector_files
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(pt, d / "detector.pt")
    with pytest.raises(FileNotFoundError):
        load_model_for_inference(d, "classifier")
    model, info = load_model_for_inference(d, "detector", "int8", threads=1)  # no ONNX yet: torch
    assert info["runtime"] == "torch" and isinstance(model, LesionDetector) and "missing" in info["note"]
    shutil.copy(fp32, d / "detector.onnx")
    model, info = load_model_for_inference(d, "detector", "int8", threads=1)  # int8 missing: fp32
    assert info["runtime"] == "onnx-fp32" and isinstance(model, OnnxDetector)
    shutil.copy(int8, d / "detector.int8.onnx")
    model, info = load_model_for_inference(d, "detector", "int8", threads=1)
    assert info["runtime"] == "onnx-int8" and model.precision == "int8"
    (d / "detector.pt").write_bytes(pt.read_bytes() + b"retrained")  # ONNX files now stale
    model, info = load_model_for_inference(d, "detector", "int8", threads=1)
    assert info["runtime"] == "torch" and "stale" in info["note"]


def test_prediction_layers_can_stay_fp32(detector_files, tmp_path: Path) -> None:
    import json

    import onnx

    from livus.infer.onnx import output_conv_nodes

    _, _, fp32, _ = detector_files
    heads = output_conv_nodes(fp32)
    # heatmap, regression and segmentation convolutions + the image head's linear layer
    assert len(heads) == 4 and any("heatmap" in h for h in heads) and any("seg" in h for h in heads)
    assert any("image_head" in h for h in heads)
    q = quantize_detector_int8(fp32, tmp_path / "mixed.onnx", list(_blobs(4, 64)), nodes_to_exclude=heads)
    graph = onnx.load(str(q)).graph
    initialisers = {i.name for i in graph.initializer}
    by_name = {n.name: n for n in graph.node}
    for h in heads:  # weights fed directly from a float initialiser, not through DequantizeLinear
        assert by_name[h].input[1] in initialisers
    assert json.loads(read_onnx_metadata(q)["livus.quantisation"])["fp32_nodes"] == heads
