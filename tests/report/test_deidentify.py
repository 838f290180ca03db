from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from report_factories import FAKE_IDENTITY, PRIVATE_VALUE, make_frame, make_result, make_us_dicom

from livus.report.deid_profile import action_for
from livus.report.dicom_sr import read_sr_measurements, write_measurement_sr
from livus.report.deidentify import deidentify_path
from livus.report.pseudonyms import shift_date
from livus.report.redact_pixels import RedactParams, redact_burned_in_text

KEY = "site-key-for-tests"
# tests of the headers and tables skip the OCR (slow) and write the images marked not clean
FAST = {"params": RedactParams(ocr=False), "write_uncertain": True}
TEXT_BOX = (slice(8, 30), slice(4, 110))  # rows, cols of the burned-in name (outside the fan)


def _frame_with_name(seed: int = 0) -> np.ndarray:
    img = make_frame(seed=seed)
    cv2.putText(img, "ZHANG WEI", (6, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 255, 1, cv2.LINE_AA)
    return img


@pytest.fixture
def export_tree(tmp_path: Path):
    src = tmp_path / "src"
    (src / "dicom").mkdir(parents=True)
    study = pydicom.uid.generate_uid()
    a1 = make_us_dicom(_frame_with_name(), study_uid=study)
    a2 = make_us_dicom(_frame_with_name(1), study_uid=study, frames=2,
                       identity={"StudyDate": "20240517"})
    b = make_us_dicom(make_frame(seed=2), identity={"PatientName": "Liu^Yang", "PatientID": "MRN-11223344",
                                                    "PatientBirthDate": "19700101", "StudyDate": "20230102"})
    a1.save_as(src / "dicom" / "Zhang_Wei_1.dcm", enforce_file_format=True)
    a2.save_as(src / "dicom" / "Zhang_Wei_2.dcm", enforce_file_format=True)
    b.save_as(src / "dicom" / "other.dcm", enforce_file_format=True)
    write_measurement_sr(a1, make_result(), src / "sr" / "measurements.dcm")
    source = "/data/Zhang_Wei/MRN-99887766/Zhang_Wei_1.dcm"
    out = src / "results"
    case_dir = out / "cases" / f"study-{study}"
    case_dir.mkdir(parents=True)
    (out / "results.jsonl").write_text(json.dumps({"schema": "livus.result/1", "source": source, "frame_index": 0,
                                                   "lesions": []}) + "\n", encoding="utf-8")
    (out / "summary.csv").write_text(f"source,frame_index,n_lesions,patient_id\n{source},0,1,MRN-99887766\n",
                                     encoding="utf-8")
    (case_dir / "case.json").write_text(json.dumps({"case_id": f"study-{study}", "sources": [source],
                                                    "reasons": ["Sunshine General Hospital protocol"]}),
                                        encoding="utf-8")
    cv2.imwrite(str(case_dir / "overlay_Zhang_Wei_1_0000.png"), _frame_with_name())
    (case_dir / "report_case_zh.html").write_text("<p>Zhang^Wei</p>", encoding="utf-8")
    originals = {str(v) for v in FAKE_IDENTITY.values()} | {PRIVATE_VALUE, "MRN-11223344", "Liu^Yang", "19700101",
                                                            "20230102", "Zhang_Wei", "Zhang Wei"}
    for ds in (a1, a2, b):
        originals |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID}
    return src, tmp_path / "export", originals, study


def test_no_identifying_value_survives(export_tree):
    src, dst, originals, _ = export_tree
    report = deidentify_path(src, dst, key=KEY, **FAST)
    outputs = [p for p in dst.rglob("*") if p.is_file()]
    assert len(outputs) == len(report.written) == 8  # 3 images + 1 SR, 1 PNG, jsonl, csv, json; html skipped
    assert any("re-render" in why for _, why in report.skipped)
    for path in outputs:
        data = path.read_bytes()
        rel = str(path.relative_to(dst))
        for value in originals:
            assert value.encode() not in data, f"{value!r} survives in {rel}"
            assert value.lower() not in rel.lower(), f"{value!r} survives in the name {rel}"
    assert "Sunshine" not in report.summary_text() and len(report.pseudonyms) == 2


def test_dicom_profile_and_consistent_pseudonyms(export_tree):
    src, dst, _, study = export_tree
    deidentify_path(src, dst, key=KEY, **FAST)
    files = sorted((dst / "dicom").glob("*.dcm"))
    by_name = {p.name: pydicom.dcmread(p) for p in files}
    a = [ds for name, ds in by_name.items() if name != "other.dcm"]
    (b,) = [ds for name, ds in by_name.items() if name == "other.dcm"]
    assert len(a) == 2
    assert a[0].PatientID == a[1].PatientID == a[0].PatientName.family_name and a[0].PatientID.startswith("LIVUS-")
    assert b.PatientID != a[0].PatientID
    assert a[0].StudyInstanceUID == a[1].StudyInstanceUID != study and a[0].StudyInstanceUID.startswith("2.25.")
    assert a[0].SOPInstanceUID == a[0].file_meta.MediaStorageSOPInstanceUID
    for ds in (*a, b):
        assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
        assert "113100" in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
        assert not any(elem.tag.is_private for elem in ds.iterall())
        assert ds.get("PatientBirthDate", "") == "" and ds.get("InstitutionName", "") in ("", "ANONYMIZED")
        assert ds.get("AccessionNumber", "") == "" and "ReferringPhysicianName" not in ds or not ds.ReferringPhysicianName
        assert "SequenceOfUltrasoundRegions" in ds  # the pixel spacing is kept
    # dates shifted by one offset per patient (both A files had 20240517)
    assert a[0].StudyDate == a[1].StudyDate != "20240517" and len(a[0].StudyDate) == 8
    # the same key gives the same pseudonyms in another export
    again = deidentify_path(src, dst.parent / "export2", key=KEY, **FAST)
    assert a[0].PatientID in again.pseudonyms
    other_key = deidentify_path(src, dst.parent / "export3", key="another-site", **FAST)
    assert a[0].PatientID not in other_key.pseudonyms


def test_burned_in_name_blacked_out(export_tree):
    src, dst, _, _ = export_tree
    before = _frame_with_name()
    assert before[TEXT_BOX].max() == 255
    report = deidentify_path(src, dst, key=KEY)
    assert report.pixel_methods.get("ocr+overlay-detector", 0) >= 3 and not report.not_clean
    dicoms = [pydicom.dcmread(p) for p in (dst / "dicom").glob("*.dcm")]
    patient_a = next(d.PatientID for d in dicoms if d.get("NumberOfFrames", 1) == 2)
    (ds,) = [d for d in dicoms if d.PatientID == patient_a and d.get("NumberOfFrames", 1) == 1]
    pixels = ds.pixel_array
    assert pixels[TEXT_BOX].max() == 0
    fan_rows = slice(100, 200)
    assert np.mean(pixels[fan_rows] == make_frame()[fan_rows]) > 0.99  # echo data untouched
    png = next(dst.rglob("*.png"))
    assert cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)[TEXT_BOX].max() == 0
    assert ds.BurnedInAnnotation == "NO"


def test_tables_use_pseudonyms(export_tree):
    src, dst, _, study = export_tree
    deidentify_path(src, dst, key=KEY, **FAST)
    dicoms = [pydicom.dcmread(p) for p in (dst / "dicom").glob("*.dcm")]
    new_study = next(ds.StudyInstanceUID for ds in dicoms if ds.get("NumberOfFrames", 1) == 2)
    case_json = next(dst.rglob("case.json"))
    case = json.loads(case_json.read_text(encoding="utf-8"))
    assert case["case_id"] == case_json.parent.name and case["case_id"].startswith("case-")
    assert new_study not in case_json.read_text(encoding="utf-8")
    assert case["sources"][0].startswith("src-") and case["sources"][0].endswith(".dcm")
    assert "REMOVED" in case["reasons"][0]
    record = json.loads(next(dst.rglob("results.jsonl")).read_text(encoding="utf-8"))
    assert record["source"] == case["sources"][0]  # the same source → the same token everywhere
    csv_text = next(dst.rglob("summary.csv")).read_text(encoding="utf-8")
    patient_a = next(ds.PatientID for ds in dicoms if ds.get("NumberOfFrames", 1) == 2)
    assert f"{case['sources'][0]},0,1,{patient_a}" in csv_text  # patient_id column → the DICOM pseudonym


def test_redaction_fallback_top_band():
    flat = np.full((100, 120), 90, np.uint8)  # no fan to find: the whole image is "echo"
    cv2.putText(flat, "NAME", (5, 8), cv2.FONT_HERSHEY_SIMPLEX, 0.3, 255, 1)
    result = redact_burned_in_text(flat)
    assert result.method == "ocr+top-band" and result.image[:10].max() == 0 and result.image[50, 60] == 90


def test_profile_actions_and_date_shift():
    assert action_for(0x0010, 0x0010, "PN") in ("Z", "D")  # Patient's Name
    assert action_for(0x0010, 0x0030, "DA") == "Z"  # birth date emptied, not shifted
    assert action_for(0x0008, 0x0020, "DA") == "SHIFT"  # Study Date
    assert action_for(0x0020, 0x000D, "UI") == "U"  # Study Instance UID
    assert action_for(0x0008, 0x0080, "LO") in ("X", "Z", "D")  # Institution Name (X/Z/D)
    assert action_for(0x0008, 0x0033, "TM") == "K"  # Content Time (Z/D, Type 1 in the SR): kept
    assert action_for(0x0008, 0x1140, "SQ") == "K"  # Referenced Image Sequence: kept, UIDs remapped
    assert action_for(0x0008, 0x1110, "SQ") == "X"  # Referenced Study Sequence (Type 3): removed
    assert action_for(0x0028, 0x0010, "US") == "K"  # Rows
    assert action_for(0x6002, 0x3000, "OW") == "X"  # overlay data (repeating group 60xx)
    assert shift_date("20240517", -10) == "20240507"
    assert shift_date("20240301101530.5", -1) == "20240229101530.5"
    assert shift_date("2024-05-17", 3) == "2024-05-20" and shift_date("garbage", 3) == ""


def test_cli_export(export_tree, capsys):
    from livus.cli import main

    src, dst, _, _ = export_tree
    assert main(["export", "--deidentify", str(src), str(dst), "--key", KEY]) == 0
    out = capsys.readouterr().out
    assert "8 files written" in out and "LIVUS-" in out
    assert main(["export", str(src), str(dst.parent / "x")]) == 2  # --deidentify is required


def test_sr_keeps_measurements_and_follows_new_uids(export_tree):
    src, dst, _, _ = export_tree
    deidentify_path(src, dst, key=KEY, **FAST)
    sr = pydicom.dcmread(next((dst / "sr").glob("*.dcm")))
    images = [pydicom.dcmread(p) for p in (dst / "dicom").glob("*.dcm")]
    referenced = {str(e.value) for e in sr.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
    patient_a = next(d.PatientID for d in images if d.get("NumberOfFrames", 1) == 2)
    (a1,) = [d for d in images if d.PatientID == patient_a and d.get("NumberOfFrames", 1) == 1]
    assert referenced == {a1.SOPInstanceUID}  # references follow the replaced UIDs
    assert sr.PatientID == patient_a and sr.StudyInstanceUID == a1.StudyInstanceUID
    groups = read_sr_measurements(sr)
    assert groups[0]["long_axis"][0] == pytest.approx(13.0)  # measurements survive de-identification


def test_compressed_and_colour_multiframe_pixels_cleaned(tmp_path):
    from pydicom.uid import RLELossless

    img = _frame_with_name()
    rle = make_us_dicom(img)
    rle.compress(RLELossless)
    colour = make_us_dicom(img, frames=2)
    colour.SamplesPerPixel, colour.PhotometricInterpretation, colour.PlanarConfiguration = 3, "RGB", 0
    colour.PixelData = np.stack([cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)] * 2).tobytes()
    (tmp_path / "s").mkdir()
    rle.save_as(tmp_path / "s" / "rle.dcm", enforce_file_format=True)
    colour.save_as(tmp_path / "s" / "colour.dcm", enforce_file_format=True)
    report = deidentify_path(tmp_path / "s", tmp_path / "o", key=KEY)
    assert report.n_dicom == 2 and not report.skipped
    rle_out = pydicom.dcmread(tmp_path / "o" / "rle.dcm").pixel_array
    colour_out = pydicom.dcmread(tmp_path / "o" / "colour.dcm").pixel_array
    assert rle_out.shape == (240, 320) and rle_out[TEXT_BOX].max() == 0
    assert colour_out.shape == (2, 240, 320, 3) and colour_out[:, TEXT_BOX[0], TEXT_BOX[1]].max() == 0
    assert np.array_equal(rle_out[150:200, 100:200], img[150:200, 100:200])  # echo data kept
