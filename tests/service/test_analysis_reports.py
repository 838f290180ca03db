"""The web service always writes a study's HTML/PDF reports, whatever ``analyze.reports`` its
analysis config sets (that setting is for ``livus analyze`` batches; issue 17)."""

from __future__ import annotations

import cv2

from livus.service.analysis import AnalysisJob, analyse_files

from .conftest import ultrasound_like


def test_service_writes_reports_even_when_the_config_says_none(tmp_path):
    cv2.imwrite(str(tmp_path / "liver.png"), ultrasound_like())
    cfg = tmp_path / "analysis.yaml"
    cfg.write_text("analyze:\n  reports: none\n  gradcam: false\n", encoding="utf-8")
    job = AnalysisJob(paths=[str(tmp_path / "liver.png")], out_dir=str(tmp_path / "out"),
                      model_dir=str(tmp_path / "no_models"), config_path=str(cfg), language="en")
    out = analyse_files(job)
    assert out.case_jsons  # the batch pipeline ran (no fallback to frames only)
    assert sorted(kind for kind, _ in out.reports) == ["html", "pdf"]
