"""CEUS LI-RADS per observation in the DICOM SR: each lesion of a CEUS observation gets its own
category, confidence and features (rim APHE / marked washout measured or "not measured") with
their probabilities, one tracking UID per observation across frames; other groups carry the
case's CEUS category; the document stays dciodvfy-clean."""

from __future__ import annotations

import pydicom
import pytest
from report_factories import make_frame, make_result, make_us_dicom
from test_dicom_seg import dciodvfy_errors

from livus.infer.lirads_case import lirads_for_case
from livus.report.dicom_sr import LIVUS_SCHEME, build_series_sr
from livus.types import LesionTrack, PatientBackground

AT_RISK = PatientBackground(cirrhosis=True)
MODEL = {"arterial_phase_hyperenhancement": 0.96, "washout_none": 0.03, "washout_late": 0.9, "washout_early": 0.07,
         "capsule_enhancement": 0.2}
RIM = "rim_arterial_phase_hyperenhancement"


def _measure(measured: bool, probability=None, value=None, reason=None):
    return {"measured": measured, "probability": probability, "value": value, "threshold": None, "margin": None,
            "time_s": None, "reason": reason, "details": {}}


def _ceus_case():
    """Two frames of a CEUS clip: observation 1 (in both frames) with measured rim APHE → LR-M,
    observation 2 (frame 0) with measured non-rim APHE and marked washout not measured → LR-5."""
    r0, r1 = make_result(), make_result()
    r1.frame_index = 1
    t1 = LesionTrack(1, "clip.dcm", observations=[(0, r0.lesions[0]), (1, r1.lesions[0])], long_axis_mm=13.0,
                     ceus_features={**MODEL, RIM: 0.97, "washout_marked": 0.02},
                     ceus_measures={RIM: _measure(True, 0.97, 0.41), "washout_marked": _measure(True, 0.02, 0.9)})
    t2 = LesionTrack(2, "clip.dcm", observations=[(0, r0.lesions[1])], long_axis_mm=22.0,
                     ceus_features={**MODEL, RIM: 0.04},
                     ceus_measures={RIM: _measure(True, 0.04, 0.02),
                                    "washout_marked": _measure(False, reason="no_washout_frames")})
    return r0, r1, lirads_for_case(AT_RISK, [], [], [t1, t2])


def _groups(sr):
    """Per measurement group: label, tracking UID, {concept: value code}, {concept: (number, method)}."""
    out = []

    def walk(items, g):
        for item in items:
            name = item.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in item else None
            if item.ValueType == "CONTAINER" and name == "125007":
                g = {"label": None, "uid": None, "codes": {}, "nums": {}}
                out.append(g)
            elif g is not None and name == "112039":
                g["label"] = item.TextValue
            elif g is not None and name == "112040":
                g["uid"] = item.UID
            elif g is not None and item.ValueType == "CODE" and item.ConceptCodeSequence[0].CodingSchemeDesignator == LIVUS_SCHEME:
                g["codes"].setdefault(name, []).append(item.ConceptCodeSequence[0].CodeValue)
            elif g is not None and item.ValueType == "NUM":
                method = [c.ConceptCodeSequence[0].CodeValue for c in item.get("ContentSequence", [])
                          if c.ConceptNameCodeSequence[0].CodeValue == "370129005"]
                g["nums"][name] = (float(item.MeasuredValueSequence[0].NumericValue), method[0] if method else None)
            if "ContentSequence" in item and not (item.ValueType == "NUM"):
                walk(item.ContentSequence, g)

    walk(sr.ContentSequence, None)
    return out


def test_each_ceus_observation_has_its_own_category_and_features(tmp_path):
    r0, r1, lirads = _ceus_case()
    ds = make_us_dicom(make_frame(), frames=2)
    sr = build_series_sr([ds, ds], [r0, r1], lirads, device_uid="1.2.826.0.1.3680043.8.498.1")
    groups = _groups(sr)
    assert [g["label"] for g in groups] == ["observation 1 (frame 1)", "observation 2 (frame 1)",
                                            "observation 1 (frame 2)", "lesion 2 (frame 2)"]
    obs1, obs2, obs1b, other = groups
    # a lesion of no CEUS observation (not tracked): the case's category, never an observation's
    assert other["codes"]["LIRADS-CEUS-CASE"] == ["LR-M"] and "LIRADS-CEUS-CAT" not in other["codes"]
    # one tracking UID per observation, shared by its groups in every frame
    assert obs1["uid"] == obs1b["uid"] != obs2["uid"]
    assert obs1["codes"]["LIRADS-CEUS-CAT"] == ["LR-M"] and obs2["codes"]["LIRADS-CEUS-CAT"] == ["LR-5"]
    assert obs1["codes"]["CEUS-RIM-APHE"] == ["present"] and obs2["codes"]["CEUS-RIM-APHE"] == ["absent"]
    assert obs1["codes"]["CEUS-MARKED-WO"] == ["absent"] and obs2["codes"]["CEUS-MARKED-WO"] == ["not-measured"]
    assert obs1["codes"]["CEUS-APHE"] == ["present"] and obs1["codes"]["CEUS-WASHOUT"] == ["washout-late"]
    assert obs1["codes"]["LIRADS-CEUS-CONF"] == ["confident"]
    assert "LIRADS-CEUS-CASE" not in obs1["codes"] and "LIRADS-US-CAT" not in obs1["codes"]  # no B-mode part
    # probabilities of the called values, with where they come from
    assert obs1["nums"]["CEUS-RIM-APHE-P"] == (pytest.approx(0.97), "CEUS-TIC")
    assert obs1["nums"]["CEUS-APHE-P"] == (pytest.approx(0.96), "CEUS-MODEL")
    assert obs1["nums"]["CEUS-WASHOUT-P"] == (pytest.approx(0.9), "CEUS-MODEL")
    assert obs1["nums"]["CEUS-RIM-RATIO"] == (pytest.approx(0.41), "CEUS-TIC")
    assert "CEUS-MARKED-WO-P" not in obs2["nums"] and "CEUS-WO-RATIO" not in obs2["nums"]
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


def test_a_low_confidence_observation_says_so():
    r0, _, _ = _ceus_case()
    t = LesionTrack(1, "clip.dcm", observations=[(0, r0.lesions[0])], long_axis_mm=13.0,
                    ceus_features={**MODEL, RIM: 0.62, "washout_marked": 0.02})
    lirads = lirads_for_case(AT_RISK, [], [], [t])
    g = _groups(build_series_sr([make_us_dicom(make_frame())], [r0], lirads, device_uid="1.2.3"))[0]
    assert g["codes"]["LIRADS-CEUS-CAT"] == ["LR-M"] and g["codes"]["LIRADS-CEUS-CONF"] == ["low-confidence"]
    assert g["nums"]["CEUS-RIM-APHE-P"] == (pytest.approx(0.62), "CEUS-MODEL")  # no measures: an input, not the TICs


def test_bmode_lesions_carry_the_case_ceus_category_not_an_observation_one(tmp_path):
    clip = make_result()
    ceus = [LesionTrack(3, "clip.dcm", observations=[(0, clip.lesions[0])], long_axis_mm=13.0,
                        ceus_features={**MODEL, RIM: 0.97, "washout_marked": 0.02})]
    still = make_result()
    tracks = [LesionTrack(k + 1, still.source, observations=[(0, les)], long_axis_mm=les.long_axis_mm)
              for k, les in enumerate(still.lesions)]
    lirads = lirads_for_case(AT_RISK, [still], tracks, ceus)
    sr = build_series_sr([make_us_dicom(make_frame())], [still], lirads, device_uid="1.2.3")
    groups = _groups(sr)
    assert [g["label"] for g in groups] == ["lesion 1", "lesion 2"]
    for g in groups:
        assert g["codes"]["LIRADS-CEUS-CASE"] == ["LR-M"] and "LIRADS-CEUS-CAT" not in g["codes"]
        assert g["codes"]["LIRADS-US-CAT"] == ["US-3"] and not any(k.startswith("CEUS-") for k in g["nums"])
    path = tmp_path / "still.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).SOPClassUID == sr.SOPClassUID and dciodvfy_errors(path) == []

