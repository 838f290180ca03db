from __future__ import annotations

import highdicom as hd
import pydicom
import pytest
from report_factories import make_frame, make_result, make_us_dicom

from livus.report.dicom_sr import read_sr_measurements, write_measurement_sr
from livus.report.overlay import axis_endpoints_px


def test_sr_roundtrip_mm(tmp_path, frame_grey, frame_result):
    source = make_us_dicom(frame_grey)
    path = write_measurement_sr(source, frame_result, tmp_path / "sr.dcm")
    sr = pydicom.dcmread(path)
    assert sr.Modality == "SR" and sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert sr.PatientID == source.PatientID and sr.StudyInstanceUID == source.StudyInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert evidence.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert source.SOPInstanceUID.encode() in path.read_bytes()  # also referenced by the image regions

    groups = read_sr_measurements(sr)
    assert len(groups) == 2
    for group, lesion in zip(groups, frame_result.lesions):
        assert group["long_axis"][0] == pytest.approx(lesion.long_axis_mm, abs=1e-3)
        assert group["short_axis"][0] == pytest.approx(lesion.short_axis_mm, abs=1e-3)
        assert group["long_axis"][1] == "mm"
    assert groups[0]["malignancy"] == (pytest.approx(0.83), "1")
    assert "malignancy" not in groups[1]  # not assessed → no number invented


def test_sr_pixels_when_no_spacing_and_multiframe(tmp_path):
    result = make_result(spacing=None)
    result.frame_index = 2
    source = make_us_dicom(make_frame(), frames=3, spacing_mm=None)
    sr = pydicom.dcmread(write_measurement_sr(source, result, tmp_path / "sr.dcm"))
    groups = read_sr_measurements(sr)
    assert groups[0]["long_axis"] == (pytest.approx(52.0), "{pixels}")
    assert groups[1]["short_axis"] == (pytest.approx(18.0), "{pixels}")
    # the region references frame 3 (1-based) of the multi-frame source
    frames = [item.ReferencedFrameNumber for item in _iter(sr.ContentSequence)
              if "ReferencedFrameNumber" in item]
    assert frames and all(int(f) == 3 for f in frames)


def _iter(seq):
    for item in seq:
        yield item
        for key in ("ContentSequence", "ReferencedSOPSequence"):
            if key in item:
                yield from _iter(getattr(item, key))


def test_sr_without_lesions(tmp_path, frame_grey):
    result = make_result()
    result.lesions = []
    sr = pydicom.dcmread(write_measurement_sr(make_us_dicom(frame_grey), result, tmp_path / "sr.dcm"))
    assert read_sr_measurements(sr) == [{}]  # one group, no measurement
    assert "281900007" in str(sr)  # SCT "No abnormality detected"


def test_highdicom_parses_it_as_tid1500(tmp_path, frame_grey, frame_result):
    path = write_measurement_sr(make_us_dicom(frame_grey), frame_result, tmp_path / "sr.dcm")
    groups = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    assert len(groups) == 2
    assert groups[0].roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE  # mask outline
    assert groups[1].roi.graphic_type == hd.sr.GraphicTypeValues.ELLIPSE  # axes only
    names = [m.name.meaning for m in groups[0].get_measurements()]
    assert names == ["Long axis", "Short axis", "Probability of cancer"]
    # SCOORD is in DICOM pixel-corner coordinates: the ellipse's first point is the long-axis end
    ellipse = groups[1].roi.value
    lesion = frame_result.lesions[1]
    long_ends, _ = axis_endpoints_px(lesion)
    assert ellipse[0] == pytest.approx(long_ends[0] + 0.5, abs=1e-3)


def _codes(sr) -> set[str]:
    out = set()
    for item in _iter(sr.ContentSequence):
        if "ConceptCodeSequence" in item:
            code = item.ConceptCodeSequence[0]
            out.add(str(code.get("CodeValue") or code.get("LongCodeValue")))
    return out


def test_sr_of_a_not_assessed_frame_never_says_no_abnormality(tmp_path, frame_grey):
    from livus.types import Assessability

    result = make_result()
    result.quality = {"verdict": "not_ultrasound", "ok": False}
    result.assessability = Assessability("not_assessable", ["not_ultrasound"])
    sr = pydicom.dcmread(write_measurement_sr(make_us_dicom(frame_grey), result, tmp_path / "sr.dcm"))
    codes = _codes(sr)
    assert "281900007" not in codes  # no "No abnormality detected"
    assert "111235" in codes and "not_ultrasound" in codes  # unusable image + the verdict
    assert read_sr_measurements(sr) == [{}]  # its lesions (if any) are not reported
    assert "not assessed" in str(sr)
    result.assessability = None  # an old result: judged from its quality verdict
    assert "281900007" not in _codes(pydicom.dcmread(write_measurement_sr(make_us_dicom(frame_grey), result,
                                                                           tmp_path / "sr2.dcm")))


def test_sr_carries_the_quality_of_assessed_frames(tmp_path, frame_grey, frame_result):
    from livus.types import Assessability

    frame_result.quality = {"verdict": "heavily_shadowed", "ok": False}
    frame_result.assessability = Assessability("limited", ["shadowing"])
    sr = pydicom.dcmread(write_measurement_sr(make_us_dicom(frame_grey), frame_result, tmp_path / "sr.dcm"))
    assert len(read_sr_measurements(sr)) == 2  # the two lesions, as before
    assert {"111236", "heavily_shadowed", "shadowing"} <= _codes(sr)
    frame_result.lesions, frame_result.quality, frame_result.assessability = [], {"verdict": "ok", "ok": True}, None
    codes = _codes(pydicom.dcmread(write_measurement_sr(make_us_dicom(frame_grey), frame_result, tmp_path / "sr2.dcm")))
    assert {"281900007", "111237", "ok"} <= codes  # assessed, nothing found
