"""``livus bench`` on tiny random networks (quick mode): structure of the report, JSON, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from livus.cli import main  # noqa: E402
from livus.config import ClassifierConfig, DetectorConfig  # noqa: E402
from livus.train.bench import DEFAULT_RUNTIME, STAGES, BenchConfig, format_report, peak_rss_mb, run_bench, target_checks  # noqa: E402
from livus.models.classifier import LesionClassifier, save_classifier  # noqa: E402
from livus.models.detector import LesionDetector, save_detector  # noqa: E402


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bench_models")
    save_detector(LesionDetector(DetectorConfig(encoder="resnet_lite", input_size_px=64, widths=(8, 16, 24, 32), stem_channels=8,
                                                fpn_channels=16, head_channels=8)), d / "detector.pt", meta={"version": "t"})
    save_classifier(LesionClassifier(ClassifierConfig(encoder="resnet_lite", crop_size_px=32, widths=(8, 16))), d / "classifier.pt")
    return d


def test_quick_bench_report_has_every_stage_runtime_and_target(tiny_models: Path, tmp_path: Path) -> None:
    report = run_bench(BenchConfig.quick(model_dir=tiny_models, sizes=(64,), work_dir=tmp_path / "w"), progress=False)
    assert {(r["runtime"], r["input_size_px"]) for r in report["results"]} == {
        ("torch", 64), ("onnx-fp32", 64), ("onnx-int8", 64)}
    for r in report["results"]:
        assert set(r["stages_ms"]) == set(STAGES)
        for s in STAGES:
            assert 0 < r["stages_ms"][s]["median"] <= r["stages_ms"][s]["p95"] + 1e-9
        assert r["end_to_end_fps"] > 0
        e2e = r["end_to_end_ms"]["mean"]
        assert e2e == pytest.approx(sum(r["stages_ms"][s]["mean"] for s in STAGES), rel=0.02)
    assert report["default"] == {"runtime": DEFAULT_RUNTIME, "input_size_px": 64}
    assert report["end_to_end_fps"] == report["default_result"]["end_to_end_fps"]
    (proc,) = report["processes"]
    assert proc["runtime"] == DEFAULT_RUNTIME and proc["throughput_fps"] > 0
    assert 50 < proc["peak_rss_mb"] < 4000 and proc["model_load_s"] > 0
    assert report["model_files_mb"]["total"] == pytest.approx(
        report["model_files_mb"]["detector"] + report["model_files_mb"]["classifier"], abs=2e-3)
    assert set(report["targets"]) == {"inference_ms_median", "end_to_end_fps", "peak_rss_mb", "model_files_mb"}
    text = format_report(report)
    assert "preprocess" in text and "onnx-int8" in text and "targets" in text
    json.dumps(report)  # JSON-ready


def test_target_checks_compare_with_limits() -> None:
    report = {"default": {"runtime": "onnx-int8", "input_size_px": 256},
              "default_result": {"inference_ms": {"median": 8.0}}, "end_to_end_fps": 25.0,
              "processes": [{"runtime": "onnx-int8", "input_size_px": 256, "peak_rss_mb": 300.0},
                            {"runtime": "torch", "input_size_px": 256, "peak_rss_mb": 900.0}],
              "model_files_mb": {"total": 1.5}}
    t = target_checks(report)
    assert t["inference_ms_median"]["met"] is True
    assert t["end_to_end_fps"]["met"] is False
    assert t["peak_rss_mb"]["measured"] == 300.0 and t["peak_rss_mb"]["met"] is True
    assert t["model_files_mb"]["met"] is True
    assert target_checks({"default": {"runtime": "x", "input_size_px": 1}})["peak_rss_mb"]["met"] is None


def test_peak_rss_is_plausible() -> None:
    assert 10 < peak_rss_mb() < 100_000
    assert not math.isnan(peak_rss_mb())


def test_cli_bench_writes_json(tiny_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", "--quick", "--model-dir", str(tiny_models), "--sizes", "64", "--runtimes", "onnx-fp32",
               "--default-runtime", "onnx-fp32", "--workers", "0", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["end_to_end_fps"] > 0 and data["default"]["runtime"] == "onnx-fp32"
    assert data["processes"] == []
