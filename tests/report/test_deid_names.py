"""Patient names of any length (Li, Wu, Xu, Doe) and CJK names (李, 王伟) are scrubbed from free
text as whole words when they are the patient's name (issue 15)."""

from __future__ import annotations

import json

import pydicom
from report_factories import make_frame, make_us_dicom

from livus.report.deidentify import deidentify_path
from livus.report.pseudonyms import REMOVED, Pseudonymizer
from livus.report.redact_pixels import RedactParams


def _pz(*names: str) -> Pseudonymizer:
    pz = Pseudonymizer(key=b"k")
    for name in names:
        pz.forget_name(name)
    return pz


def test_short_latin_names_scrubbed_as_whole_words():
    pz = _pz("Li^Wu", "Doe^Xu")
    assert pz.scrub_text("Patient LI wu, seen by Dr. doe; Xu.") == f"Patient {REMOVED}, seen by Dr. {REMOVED}; {REMOVED}."
    assert pz.scrub_text("Wu, Li") == f"{REMOVED}, {REMOVED}"
    kept = "US LI-RADS 3, liver, lipoma, Wuhan, Xuzhou, Doe-run, does"
    assert pz.scrub_text(kept) == kept  # never inside a longer word nor LI-RADS
    assert pz.scrub_text("Li_Wu_1.dcm") == f"{REMOVED}_1.dcm"  # file names


def test_cjk_names_scrubbed():
    pz = _pz("Wang^Wei=王^伟", "李^")
    text = "患者王伟，王先生复查；李女士；李 ；随访 2 周，行李，王府井"
    out = pz.scrub_text(text)
    assert "王伟" not in out and "王先生" not in out and "李女士" not in out and "李 " not in out
    assert "行李" in out and "王府井" in out and "2 周" in out  # characters inside other words stay
    assert pz.scrub_text("WANG WEI and Wei Wang") == f"{REMOVED} and {REMOVED}"


def test_export_scrubs_the_patients_short_and_cjk_names(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ds = make_us_dicom(make_frame(), identity={"PatientName": "Doe^Li=李^", "PatientID": "MRN-7"})
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8
    ds.ViewName = "Doe Li, LI-RADS"  # free text kept by the profile (SH, 16 characters)
    ds.save_as(src / "scan.dcm", enforce_file_format=True)
    case = {"case_id": "c1", "reasons": ["Li Doe 随访", "US LI-RADS 3"], "note": "李 复查 2 周"}
    (src / "case.json").write_text(json.dumps(case, ensure_ascii=False), encoding="utf-8")
    deidentify_path(src, tmp_path / "out", key="k", params=RedactParams(ocr=False), write_uncertain=True)
    out = json.loads((tmp_path / "out" / "case.json").read_text(encoding="utf-8"))
    assert out["reasons"] == [f"{REMOVED} 随访", "US LI-RADS 3"]
    assert out["note"] == f"{REMOVED} 复查 2 周"
    exported = pydicom.dcmread(tmp_path / "out" / "scan.dcm")
    assert exported.ViewName == f"{REMOVED}, LI-RADS"
    assert "李" not in str(exported.PatientName) and "Doe" not in str(exported.PatientName)
