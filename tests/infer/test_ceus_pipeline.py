"""CEUS clips in ``livus analyze``: CEUS features per lesion track, warnings, report lines.

A tiny simulated contrast clip (``simulate_ceus_clip``, 320×240, one frame every 20 s from the
injection to 180 s) is written as an AVI at 0.05 frame/s, so the reader's ``Frame.time_s`` is the
time after injection. Models: the tiny untrained detector of ``test_pipeline`` (its peaks always
give lesions) and an untrained CEUS model: the tests check the plumbing, not the accuracy
(docs/ceus.md has the measured figures of ``models/ceus.pt``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from test_pipeline import _fan_image, _simulated_clip, tiny_model_dir  # noqa: F401 - shared fixture

from livus.config import LivusConfig
from livus.infer.case_notes import ceus_warnings
from livus.infer.ceus import add_ceus_features, dicom_injection_offset_s, dicom_time_s
from livus.infer.clip import track_clip
from livus.infer.frame import FrameAnalyzer
from livus.infer.input_analysis import analyze_input
from livus.infer.pipeline import analyze_paths

CEUS_KEYS = {"arterial_phase_hyperenhancement", "washout_none", "washout_late", "washout_early", "capsule_enhancement"}
MEASURED_KEYS = ("rim_arterial_phase_hyperenhancement", "washout_marked")  # livus.infer.ceus_tic
FPS = 0.05  # one frame every 20 s


@pytest.fixture(scope="module")
def ceus_clip(tmp_path_factory):
    """A small simulated CEUS clip (AVI), frames 0, 20, ..., 180 s after injection."""
    from livus.simulate.clips import simulate_ceus_clip
    from livus.simulate.profiles import get_profile
    from livus.simulate.scenes import sample_scene
    from livus.simulate.still import GeometryCache
    from livus.simulate.video import write_video

    rng = np.random.default_rng(3)
    geom = GeometryCache().get(get_profile("sonora_c5"), (320, 240))
    times = tuple(float(t) for t in np.arange(0, 181, 1 / FPS))
    frames = simulate_ceus_clip(rng, geom, sample_scene(rng, geom, "malignant"), times_s=times)
    path = tmp_path_factory.mktemp("ceus") / "ceus.avi"
    write_video(path, [f.image for f in frames], FPS, quality=95)
    return path


@pytest.fixture(scope="module")
def ceus_model_dir(tmp_path_factory, tiny_model_dir):  # noqa: F811 - pytest fixture
    """The tiny detector/classifier plus an untrained CEUS model."""
    import torch

    from livus.models.ceus import CeusModel, save_ceus_model

    d = tmp_path_factory.mktemp("ceus_models")
    for f in tiny_model_dir.iterdir():
        shutil.copy(f, d / f.name)
    torch.manual_seed(0)
    save_ceus_model(CeusModel(), d / "ceus.pt", {"version": "ceus-test"})
    return d


def _analyzer(model_dir, offset_s):
    cfg = LivusConfig()
    cfg.analyze.keyframe_mode, cfg.analyze.keyframe_interval = "interval", 1
    cfg.analyze.gradcam = cfg.analyze.write_overlays = False
    cfg.analyze.ceus_injection_offset_s = offset_s
    cfg.analyze.threads = 1
    return FrameAnalyzer(cfg, model_dir)


def test_ceus_clip_fills_ceus_features_of_each_track(ceus_clip, ceus_model_dir):
    res = analyze_input(ceus_clip, _analyzer(ceus_model_dir, 0.0))
    assert res.error is None and res.is_clip
    assert [fa.frame.time_s for fa in res.frames][:3] == pytest.approx([0.0, 20.0, 40.0], abs=0.05)
    assert res.tracks, "the untrained detector's peaks give lesion tracks"
    for t in res.tracks:
        # the model's features, plus rim APHE / marked washout where the time-intensity curves allow it
        assert set(t.ceus_features) - CEUS_KEYS <= set(MEASURED_KEYS) and CEUS_KEYS <= set(t.ceus_features)
        assert all(0.0 <= p <= 1.0 for p in t.ceus_features.values())
        assert sum(t.ceus_features[f"washout_{c}"] for c in ("none", "late", "early")) == pytest.approx(1.0, abs=1e-4)
        assert set(t.to_json_dict()["ceus_features"]) == set(t.ceus_features)
        assert set(t.ceus_measures) == set(MEASURED_KEYS) and t.to_json_dict()["ceus_measures"] == t.ceus_measures
        for k, m in t.ceus_measures.items():
            assert m["measured"] == (k in t.ceus_features) and (m["measured"] or m["reason"])
    keys = [k for k, _ in res.ceus_notes]
    assert keys[0] == "ceus_mode" and "ceus_capsule_experimental" in keys
    assert "ceus_phase_missing" not in keys  # 0–180 s covers the arterial and the late phase


def test_bmode_clip_leaves_ceus_features_empty(tmp_path, ceus_model_dir):
    _simulated_clip(tmp_path / "bmode.avi")
    res = analyze_input(tmp_path / "bmode.avi", _analyzer(ceus_model_dir, None))
    assert res.error is None and res.tracks is None and res.ceus_notes == []  # tracked later, as before
    tracks = track_clip([fa.result for fa in res.frames], res.path)
    assert tracks and all(t.ceus_features == {} and "ceus_features" not in t.to_json_dict() for t in tracks)


def test_still_is_unchanged_in_ceus_mode(tmp_path, ceus_model_dir):
    import cv2

    cv2.imwrite(str(tmp_path / "still.png"), _fan_image())
    res = analyze_input(tmp_path / "still.png", _analyzer(ceus_model_dir, 20.0))
    assert res.error is None and not res.is_clip and res.tracks is None and res.ceus_notes == []


def test_missing_ceus_model_is_a_warning_not_a_crash(ceus_clip, tiny_model_dir):  # noqa: F811
    assert not (tiny_model_dir / "ceus.pt").exists()
    res = analyze_input(ceus_clip, _analyzer(tiny_model_dir, 0.0))
    assert res.error is None and res.frames and res.tracks
    assert all(t.ceus_features == {} for t in res.tracks)
    assert "ceus_no_model" in [k for k, _ in res.ceus_notes]
    warnings = ceus_warnings(res, "en")
    assert any("no CEUS feature model" in w and "ceus.pt" in w for w in warnings)
    assert any("造影征象模型不可用" in w for w in ceus_warnings(res, "zh"))


def test_unusable_track_and_short_clip_give_notes(ceus_clip, ceus_model_dir):
    an = _analyzer(ceus_model_dir, None)
    res = analyze_input(ceus_clip, an)
    res.tracks = track_clip([fa.result for fa in res.frames], res.path)
    early = [fa for fa in res.frames if fa.frame.time_s < 50]  # a clip that stops at 40 s
    late_only = [t for t in res.tracks if all(fi >= len(early) for fi, _ in t.observations)]
    notes = add_ceus_features(early, res.tracks, an, 0.0)
    keys = [k for k, _ in notes]
    assert ("ceus_phase_missing", {"phases": ["late"]}) in notes
    assert keys.count("ceus_track_unusable") == len(late_only)
    res.ceus_notes = notes
    assert any("late phase" in w for w in ceus_warnings(res, "en"))
    no_times = [replace(fa, frame=replace(fa.frame, time_s=None)) for fa in early]  # e.g. frames without a frame rate
    assert [k for k, _ in add_ceus_features(no_times, res.tracks, an, 0.0)] == ["ceus_mode", "ceus_no_times"]


def test_ceus_clip_without_a_tracked_lesion_gives_no_follow_up(ceus_clip, ceus_model_dir, tmp_path):
    from livus.infer.case import load_case_rules
    from livus.infer.pipeline import assess_input_case
    from livus.types import PatientBackground

    an = _analyzer(ceus_model_dir, 0.0)
    res = analyze_input(ceus_clip, an)
    res.tracks = []  # the detector found nothing on the contrast frames
    res.ceus_notes = add_ceus_features(res.frames, [], an, 0.0)
    assert [k for k, _ in res.ceus_notes][-1] == "ceus_no_lesion"
    for lang, words in (("en", "no lesion was tracked in the contrast clip"), ("zh", "超声造影片段中未追踪到病灶")):
        case = assess_input_case("c", [res], PatientBackground(), load_case_rules(), lang)
        assert case.follow_up_months is None and case.priority is None and case.rules == []
        assert words in case.reasons[0] and len(case.reasons) == 1
        assert any(("CEUS LI-RADS not assessed" if lang == "en" else "未评估造影征象") in w for w in case.warnings)
    _simulated_clip(tmp_path / "bmode.avi")  # a B-mode clip without a lesion keeps the usual rules
    bmode = analyze_input(tmp_path / "bmode.avi", _analyzer(ceus_model_dir, None))
    bmode.tracks = []
    case = assess_input_case("b", [bmode], PatientBackground(), load_case_rules(), "en")
    assert case.assessability.usable and case.follow_up_months is not None and case.rules


def test_analyze_paths_ceus_offset_reaches_case_json_and_reports(ceus_clip, ceus_model_dir, tmp_path):
    (tmp_path / "cfg.yaml").write_text("analyze: {keyframe_mode: interval, keyframe_interval: 1, gradcam: false, "
                                       "write_overlays: false, threads: 1}\n")
    out = tmp_path / "out"
    analyze_paths([ceus_clip], out, config_path=tmp_path / "cfg.yaml", model_dir=ceus_model_dir, progress=False,
                  language="zh", ceus_offset_s=0.0)
    case = json.loads((out / "cases" / "ceus" / "case.json").read_text(encoding="utf-8"))
    assert case["lesions"] and all(set(les["ceus_features"]) == CEUS_KEYS for les in case["lesions"])
    assert any("超声造影模式" in w and "用户设定" in w for w in case["warnings"])
    html = next((out / "cases" / "ceus").glob("report_*_zh.html")).read_text(encoding="utf-8")
    for term in ("动脉期高增强", "廓清", "包膜样增强", "低可信度", "仅用模拟造影数据训练"):
        assert term in html
    from pypdf import PdfReader

    pdf = next((out / "cases" / "ceus").glob("report_*_zh.pdf"))
    pdf_text = "".join(p.extract_text() for p in PdfReader(pdf).pages)  # fpdf2 CJK: a NUL before each glyph
    assert "动脉期高增强" in pdf_text.replace("\x00", "").replace("\n", "")


def test_cli_ceus_offset_flag():
    from livus.cli import build_parser

    assert build_parser().parse_args(["analyze", "x.avi", "--out", "o", "--ceus-offset", "12.5"]).ceus_offset == 12.5
    assert build_parser().parse_args(["analyze", "x.avi", "--out", "o"]).ceus_offset is None


def test_dicom_contrast_timing(tmp_path):
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset

    assert dicom_time_s("101530.5") == pytest.approx(10 * 3600 + 15 * 60 + 30.5)
    assert dicom_time_s("10:15") == pytest.approx(10 * 3600 + 15 * 60)
    assert dicom_time_s("20261126101600.000000+0800") == pytest.approx(10 * 3600 + 16 * 60)
    assert dicom_time_s("") is None and dicom_time_s("soon") is None

    def write(name, **tags):
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # ultrasound multi-frame image
        meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds = FileDataset(str(tmp_path / name), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.Modality = "US"
        for k, v in tags.items():
            setattr(ds, k, v)
        ds.save_as(tmp_path / name, enforce_file_format=True)
        return tmp_path / name

    assert dicom_injection_offset_s(write("a.dcm", ContrastBolusStartTime="101500", AcquisitionTime="101520")) == 20
    assert dicom_injection_offset_s(write("b.dcm", AcquisitionTime="101520")) is None  # no contrast timing: B-mode
    assert dicom_injection_offset_s(write("c.dcm", ContrastBolusStartTime="101500", AcquisitionTime="101400")) is None
