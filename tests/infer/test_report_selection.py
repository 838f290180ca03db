"""``AnalyzeConfig.reports`` / ``livus analyze --reports``: HTML/PDF reports for all cases, only
for cases that need a reader's attention, or none (issue 17)."""

from __future__ import annotations

import cv2
import pytest

from fan_fakes import speckle_fan

from livus.cli import build_parser
from livus.config import AnalyzeConfig, ClassifierConfig, DetectorConfig, load_config
from livus.infer.pipeline import analyze_paths
from livus.infer.report_selection import needs_report, writes_report
from livus.models.classifier import LesionClassifier, save_classifier
from livus.models.detector import LesionDetector, save_detector
from livus.types import Assessability, CaseResult, LesionTrack


def _models(d, threshold):
    """Tiny untrained models; ``threshold`` 0: a peak is always a lesion, above 1: never one."""
    import torch

    torch.manual_seed(0)
    cfg = DetectorConfig(encoder="resnet_lite", widths=(8, 16, 16, 32), fpn_channels=16, input_size_px=128,
                         score_threshold=threshold, candidate_threshold=threshold, max_detections=2,
                         decode_mode="heatmap")
    save_detector(LesionDetector(cfg), d / "detector.pt", {"version": "test-0"})
    save_classifier(LesionClassifier(ClassifierConfig(encoder="resnet_lite", widths=(8, 16, 16), crop_size_px=48)),
                    d / "classifier.pt", {"version": "ctest-0"})
    return d


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return {"lesion": _models(tmp_path_factory.mktemp("lesion_models"), 0.0),
            "quiet": _models(tmp_path_factory.mktemp("quiet_models"), 1.01)}


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    cv2.imwrite(str(d / "liver.png"), speckle_fan(320, 240, 0))
    return d / "liver.png"


def _run(tmp_path, name, still, model_dir, reports=None, config=None):
    out = tmp_path / name
    cfg_path = None
    if config is not None:
        cfg_path = tmp_path / f"{name}.yaml"
        cfg_path.write_text(config, encoding="utf-8")
    summary = analyze_paths([still], out, config_path=cfg_path, model_dir=model_dir, progress=False, reports=reports)
    (case_dir,) = (out / "cases").iterdir()
    return summary, case_dir


def _report_files(case_dir):
    """The suffixes of the case's HTML/PDF reports (``report_<case>_<language>.html/.pdf``)."""
    return sorted(p.suffix for p in case_dir.glob("report_*") if p.suffix in (".html", ".pdf"))


def _quiet_case(**kw):
    return CaseResult("c", priority="routine", assessability=Assessability("assessable"), **kw)


def test_rule_leaves_only_a_quiet_case_without_report():
    assert needs_report(_quiet_case()) == []
    assert writes_report("findings", _quiet_case()) is False
    assert writes_report("all", _quiet_case()) is True
    assert writes_report("none", CaseResult("c", tracks=[LesionTrack(1, "x.png")])) is False
    assert needs_report(_quiet_case(tracks=[LesionTrack(1, "x.png")])) == ["lesion"]
    assert needs_report(CaseResult("c", priority="soon", assessability=Assessability("assessable"))) == ["priority soon"]
    # lesions not looked for / not assessable: no priority, so never quiet
    assert "priority none" in needs_report(CaseResult("c", assessability=Assessability("not_assessable", ["blank"])))
    limited = CaseResult("c", priority="routine", assessability=Assessability("limited", ["shadowing"]))
    assert needs_report(limited) == ["assessability limited"]
    assert needs_report(_quiet_case(warnings=["2 of 3 frames not assessable"])) == ["warning"]
    assert needs_report(_quiet_case(liver_background={"steatosis": "none", "cirrhosis_signs": True})) == ["liver background"]
    assert needs_report(_quiet_case(liver_background={"steatosis": "moderate", "cirrhosis_signs": False})) == ["liver background"]
    # the fibrosis class and surface label are not printed in the report: no reason on their own
    assert needs_report(_quiet_case(liver_background={"steatosis": "mild", "cirrhosis_signs": False,
                                                      "fibrosis": "fibrosis", "surface": "nodular"})) == []
    with pytest.raises(ValueError, match="findings"):
        writes_report("some", _quiet_case())


def test_setting_loads_from_yaml_and_rejects_unknown_values(tmp_path):
    assert AnalyzeConfig().reports == "all"
    (tmp_path / "c.yaml").write_text("analyze:\n  reports: findings\n", encoding="utf-8")
    assert load_config(tmp_path / "c.yaml").analyze.reports == "findings"
    (tmp_path / "bad.yaml").write_text("analyze:\n  reports: some\n", encoding="utf-8")
    with pytest.raises(ValueError, match="analyze.reports must be one of all, findings, none"):
        load_config(tmp_path / "bad.yaml")


def test_cli_flag_parsed():
    parser = build_parser()
    assert parser.parse_args(["analyze", "x.png", "--out", "o"]).reports is None  # the config decides
    assert parser.parse_args(["analyze", "x.png", "--out", "o", "--reports", "findings"]).reports == "findings"
    with pytest.raises(SystemExit):
        parser.parse_args(["analyze", "x.png", "--out", "o", "--reports", "some"])


def test_default_writes_reports_as_before(tmp_path, model_dirs, still):
    summary, case_dir = _run(tmp_path, "default", still, model_dirs["quiet"])
    assert _report_files(case_dir) == [".html", ".pdf"]
    assert summary.report_mode == "all" and summary.n_cases_without_report == 0
    assert sorted(summary.reports) == sorted(str(p) for p in case_dir.glob("report_*"))


def test_findings_skips_a_quiet_case_and_keeps_one_with_a_lesion(tmp_path, model_dirs, still):
    # no image-derived liver background: on this fake it reads as steatosis (a finding that keeps the report)
    findings = "analyze:\n  reports: findings\n  liver_background: false\n"
    summary, case_dir = _run(tmp_path, "quiet", still, model_dirs["quiet"], config=findings)
    case = load_case(case_dir)
    assert case["lesions"] == [] and case["priority"] == "routine" and not case["warnings"]  # the case the setting is for
    assert _report_files(case_dir) == [] and summary.reports == [] and summary.n_cases_without_report == 1
    assert list(case_dir.glob("overlay_*.png"))  # overlays are still written
    summary, case_dir = _run(tmp_path, "lesion", still, model_dirs["lesion"], config=findings)
    assert load_case(case_dir)["lesions"]
    assert _report_files(case_dir) == [".html", ".pdf"] and summary.n_cases_without_report == 0


def test_none_writes_no_report_but_every_other_output(tmp_path, model_dirs, still, capsys):
    summary, case_dir = _run(tmp_path, "none", still, model_dirs["lesion"], reports="none")
    assert _report_files(case_dir) == [] and summary.reports == []
    assert load_case(case_dir)["lesions"]
    out = case_dir.parents[1]
    assert (out / "results.jsonl").stat().st_size > 0 and (out / "summary.csv").is_file()
    assert list(case_dir.glob("overlay_*.png"))
    assert "HTML/PDF reports for 0 of 1 case(s) (reports: none)" in capsys.readouterr().out


def test_the_argument_overrides_the_config(tmp_path, model_dirs, still):
    _, case_dir = _run(tmp_path, "override", still, model_dirs["quiet"], reports="all",
                       config="analyze:\n  reports: none\n")
    assert _report_files(case_dir) == [".html", ".pdf"]


def load_case(case_dir):
    import json

    return json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
