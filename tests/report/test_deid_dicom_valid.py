"""De-identified DICOM stay valid objects (issue 15): dciodvfy (dicom3tools) finds no error in
an export that the source did not have; every attribute of the PS3.15 Basic Profile list is
removed, emptied or replaced as listed; references between exported objects follow the new
UIDs; the SR keeps its Type 1 ContentDate (shifted) and ContentTime."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom.dataset import Dataset
from report_factories import make_frame, make_result

from livus.io.dicom_write import write_us_dicom
from livus.report.deid_profile import TABLE_VERSION
from livus.report.deidentify import deidentify_path
from livus.report.dicom_seg import build_image_segmentation
from livus.report.dicom_sr import write_measurement_sr
from livus.report.redact_pixels import RedactParams

KEY = "site-key-for-tests"
PATIENT = {"name": "DOE^LI", "id": "MRN-4242", "birth_date": "19550505", "institution": "Sunshine General Hospital",
           "accession": "ACC-77"}
FAST = {"params": RedactParams(ocr=False), "write_uncertain": True}  # the headers are checked, not the pixels


def _ref(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    frame = make_frame()
    when = datetime(2024, 5, 17, 10, 15, 30)
    still = src / "still.dcm"
    write_us_dicom(still, [frame], (0.25, 0.25), PATIENT, acquired_at=when)
    still_ds = pydicom.dcmread(still)
    clip = src / "clip.dcm"
    write_us_dicom(clip, [frame, np.roll(frame, 3, axis=1)], (0.25, 0.25), PATIENT, acquired_at=when)
    clip_ds = pydicom.dcmread(clip)
    clip_ds.StudyInstanceUID = still_ds.StudyInstanceUID
    clip_ds.ReferencedImageSequence = [_ref(still_ds)]
    clip_ds.SourceImageSequence = [_ref(still_ds)]
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired)
    study.ReferencedSOPInstanceUID = pydicom.uid.generate_uid()
    clip_ds.ReferencedStudySequence = [study]  # Type 3, X/Z: removed, not left empty
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "H1", "99HOSP", "Sunshine General Hospital"
    clip_ds.InstitutionCodeSequence = [code]
    clip_ds.save_as(clip, enforce_file_format=True)
    sr = write_measurement_sr(still_ds, make_result(), src / "sr.dcm")
    seg, _ = build_image_segmentation(still_ds, make_result())
    seg.save_as(src / "seg.dcm")
    sources = {p.name: pydicom.dcmread(p) for p in (still, clip, sr, src / "seg.dcm")}
    out = tmp_path_factory.mktemp("out") / "export"
    report = deidentify_path(src, out, key=KEY, **FAST)
    exported = {p.name: pydicom.dcmread(p) for p in out.glob("*.dcm")}
    assert set(exported) == set(sources), report.summary_text()
    return src, out, sources, exported


def _dciodvfy_errors(path: Path) -> set[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    return {re.sub(r"\s+", " ", line.strip()) for line in lines if line.startswith("Error")}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy not installed (Debian package dicom3tools)")
def test_dciodvfy_finds_no_new_error(export):
    src, out, sources, _ = export
    for name in sources:
        before, after = _dciodvfy_errors(src / name), _dciodvfy_errors(out / name)
        assert after <= before, f"{name}: new errors {sorted(after - before)}"


def _tags(db: dict, category: str) -> list[tuple[int, int]]:
    return [(int(t[0]), int(t[1])) for t in db[category] if len(t) == 2]


def test_basic_profile_attribute_list(export):
    """Checked against the PS3.15 E.1-1 list itself (the dicom-anonymizer table), not livus' actions."""
    _, _, sources, exported = export
    db = dicom_anonymization_database_selector(TABLE_VERSION)
    for name, ds in exported.items():
        source = sources[name]
        assert not any(elem.tag.is_private for elem in ds.iterall())
        for tag in _tags(db, "X_TAGS"):
            assert tag not in ds, f"{name}: {pydicom.datadict.keyword_for_tag(tag)} must be removed"
        for tag in _tags(db, "Z_TAGS"):
            if tag in ds and tag != (0x0010, 0x0010) and tag != (0x0010, 0x0020):  # name / ID: pseudonyms
                elem = ds[tag]
                if elem.VR in ("DA", "DT"):  # Retain Longitudinal Temporal Information Modified Dates option
                    assert not elem.value or elem.value != source[tag].value, f"{name}: {elem.keyword} not shifted"
                    continue
                assert elem.value in (None, "", b"") or (elem.VR == "SQ" and len(elem.value) == 0), \
                    f"{name}: {elem.keyword} must be empty"
        for category in ("U_TAGS", "D_TAGS", "Z_D_TAGS", "X_D_TAGS", "X_Z_D_TAGS"):
            for tag in _tags(db, category):
                if tag in ds and tag in source and ds[tag].VR not in ("SQ", "TM") and source[tag].value:
                    assert ds[tag].value != source[tag].value, f"{name}: {ds[tag].keyword} kept its value"
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID", "AccessionNumber"):
            assert str(ds.get(keyword, "")) != str(source.get(keyword)), f"{name}: {keyword}"
        assert ds.PatientIdentityRemoved == "YES"


def test_references_follow_new_uids_and_optional_sequences_removed(export):
    _, _, sources, exported = export
    still, clip = exported["still.dcm"], exported["clip.dcm"]
    for keyword in ("ReferencedImageSequence", "SourceImageSequence"):
        (item,) = clip[keyword]
        assert item.ReferencedSOPInstanceUID == still.SOPInstanceUID != sources["still.dcm"].SOPInstanceUID
        assert item.ReferencedSOPClassUID == still.SOPClassUID
    assert "ReferencedStudySequence" not in clip and "InstitutionCodeSequence" not in clip
    sr = exported["sr.dcm"]
    referenced = {str(e.value) for e in sr.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
    assert referenced == {still.SOPInstanceUID}


def test_sr_content_date_shifted_and_time_kept(export):
    _, _, sources, exported = export
    sr, source = exported["sr.dcm"], sources["sr.dcm"]
    assert sr.ContentTime and sr.ContentTime == source.ContentTime  # Type 1: never emptied
    assert len(sr.ContentDate) == 8 and sr.ContentDate != source.ContentDate
    assert sr.StudyDate == exported["still.dcm"].StudyDate  # one shift per patient
    assert "ReferencedPerformedProcedureStepSequence" in sr  # Type 2 in the SR: kept, empty


def test_segmentation_follows_its_image_and_keeps_its_masks(export):
    _, _, sources, exported = export
    seg, still = exported["seg.dcm"], exported["still.dcm"]
    referenced = {str(e.value) for e in seg.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
    assert referenced == {still.SOPInstanceUID}
    assert seg.SeriesInstanceUID != sources["seg.dcm"].SeriesInstanceUID and seg.StudyInstanceUID == still.StudyInstanceUID
    assert np.array_equal(seg.pixel_array, sources["seg.dcm"].pixel_array)  # label masks untouched
    assert "BurnedInAnnotation" not in seg
