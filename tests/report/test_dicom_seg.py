"""DICOM SEG of the outlines and one SR per series that references the SEG segments; both
checked with dciodvfy (dicom3tools) where it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from report_factories import make_frame, make_result

from livus.io.dicom_write import write_us_dicom
from livus.report.dicom_sr import device_observer_uid, read_sr_measurements, write_series_results
from livus.types import Assessability


def dciodvfy_errors(path: Path) -> list[str]:
    """The "Error" lines dciodvfy prints for ``path`` (skip when dicom3tools is missing)."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy not installed (Debian package dicom3tools): DICOM conformance not checked")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def _series(tmp_path: Path, n: int) -> list[Path]:
    """``n`` single-frame US images of one series (as a scanner sends stills)."""
    paths = []
    for i in range(n):
        p = write_us_dicom(tmp_path / f"img{i}.dcm", [make_frame(seed=i)], (0.25, 0.25), {"id": "SEG-1", "name": "TEST^SEG"})
        paths.append(p)
    first = pydicom.dcmread(paths[0])
    for i, p in enumerate(paths[1:], start=2):
        ds = pydicom.dcmread(p)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = first.StudyInstanceUID, first.SeriesInstanceUID, i
        ds.save_as(p, enforce_file_format=True)
    return paths


def _items(node):
    for item in node:
        yield item
        if "ContentSequence" in item:
            yield from _items(item.ContentSequence)


def test_seg_and_one_sr_per_series(tmp_path):
    paths = _series(tmp_path / "in", 2)
    lesion_free = make_result()
    lesion_free.lesions = []
    out = write_series_results([(paths[0], [make_result()]), (paths[1], [lesion_free])], tmp_path / "out",
                               device_uid="1.2.826.0.1.3680043.8.498.1")
    # one series → one SR; a SEG per image with outlines (the lesion-free image still has its liver)
    assert [p.name for p in out] == ["seg_001_001.dcm", "seg_001_002.dcm", "sr_001.dcm"]
    seg, seg2, sr = (pydicom.dcmread(p) for p in out)
    sources = [pydicom.dcmread(p) for p in paths]

    # SEG of image 1: liver + 2 lesions, every frame points at image 1
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Liver", "Lesion 1", "Lesion 2"]
    assert [s.SegmentLabel for s in seg2.SegmentSequence] == ["Liver"]
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # SCT liver
    assert seg.PatientID == "SEG-1" and seg.StudyInstanceUID == sources[0].StudyInstanceUID
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    by_segment = {}
    for n, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ref = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert ref == sources[0].SOPInstanceUID
        by_segment[fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber] = frames[n]
    assert seg2.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0] \
        .ReferencedSOPInstanceUID == sources[1].SOPInstanceUID
    mask2 = by_segment[2]
    assert mask2[110, 120] == 1 and mask2[5, 5] == 0  # the lesion's centre (x 120, y 110) is inside
    assert 0.7 < mask2.sum() / (np.pi * 26 * 22) < 1.3  # about the polygon's area
    assert by_segment[3][180, 230] == 1  # lesion without polygon: its axes' ellipse
    assert by_segment[1][140, 160] == 1 and by_segment[1][20, 20] == 0  # liver polygon

    # SR: one document, lesion groups reference their SEG segments, the lesion-free image has its own group
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    groups = read_sr_measurements(sr)
    assert len(groups) == 3 and groups[0]["long_axis"][1] == "mm"
    refs = [i for i in _items(sr.ContentSequence) if i.ValueType == "IMAGE" and "ReferencedSOPSequence" in i
            and i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == seg.SOPInstanceUID]
    assert sorted(int(i.ReferencedSOPSequence[0].ReferencedSegmentNumber) for i in refs) == [2, 3]
    tracking = {str(i.UID) for i in _items(sr.ContentSequence) if i.ValueType == "UIDREF"}
    assert {str(s.TrackingUID) for s in seg.SegmentSequence[1:]} <= tracking
    texts = [str(i.TextValue) for i in _items(sr.ContentSequence) if i.ValueType == "TEXT"]
    assert "no lesion (image 2)" in texts
    evidence = {str(s.ReferencedSOPInstanceUID) for e in sr.CurrentRequestedProcedureEvidenceSequence
                for se in e.ReferencedSeriesSequence for s in se.ReferencedSOPSequence}
    assert evidence == {sources[0].SOPInstanceUID, sources[1].SOPInstanceUID, seg.SOPInstanceUID, seg2.SOPInstanceUID}
    device = [i for i in _items(sr.ContentSequence) if i.ValueType == "UIDREF"
              and i.ConceptNameCodeSequence[0].CodeValue == "121012"]  # Device Observer UID
    assert device and device[0].UID == "1.2.826.0.1.3680043.8.498.1"

    for path in out:
        assert dciodvfy_errors(path) == [], path.name


def test_not_assessable_image_gets_no_outline_and_multiframe_no_seg(tmp_path):
    paths = _series(tmp_path / "in", 1)
    r = make_result()
    r.assessability = Assessability("not_assessable", ["blank"])
    out = write_series_results([(paths[0], [r])], tmp_path / "out")
    assert [p.name for p in out] == ["sr_001.dcm"]  # nothing to show: no SEG
    assert read_sr_measurements(pydicom.dcmread(out[0])) == [{}]  # "not assessed" group, no numbers

    clip = write_us_dicom(tmp_path / "clip.dcm", [make_frame(seed=i) for i in range(3)], (0.25, 0.25), {"id": "C"})
    results = [make_result(), make_result()]
    results[1].frame_index = 2
    out = write_series_results([(clip, results)], tmp_path / "clip-out")
    assert [p.name for p in out] == ["sr_001.dcm"]  # clips: outlines as SR polylines (no frame of reference for a SEG)
    sr = pydicom.dcmread(out[0])
    assert len(read_sr_measurements(sr)) == 4
    frames = sorted({int(i.ReferencedSOPSequence[0].ReferencedFrameNumber[0]) if hasattr(
        i.ReferencedSOPSequence[0].ReferencedFrameNumber, "__len__") else int(i.ReferencedSOPSequence[0].ReferencedFrameNumber)
        for i in _items(sr.ContentSequence) if i.ValueType == "IMAGE" and "ReferencedFrameNumber" in i.ReferencedSOPSequence[0]})
    assert frames == [1, 3]
    assert dciodvfy_errors(out[0]) == []


def test_device_observer_uid_is_stable_per_installation(tmp_path):
    uid = device_observer_uid(tmp_path)
    assert uid == device_observer_uid(tmp_path) == (tmp_path / "device-observer-uid").read_text().strip()
    assert device_observer_uid(tmp_path / "other") != uid



def test_device_uid_without_a_writable_folder_is_still_stable(tmp_path, monkeypatch):
    """A folder the UID cannot be written to (read-only home): SRs are still written, with a UID
    derived from the host and folder, the same every time."""
    import os

    def refuse(*_args, **_kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(os, "link", refuse)
    first = device_observer_uid(tmp_path / "ro")
    assert first == device_observer_uid(tmp_path / "ro") != device_observer_uid(tmp_path / "other")
    assert not (tmp_path / "ro" / "device-observer-uid").exists()


def test_a_site_report_threshold_is_named_in_the_seg_and_sr_algorithm(tmp_path):
    """A site's own ``analyze.report_threshold`` changes what is reported: both DICOM objects
    carry it as an algorithm parameter (and the shipped setting carries none)."""
    paths = _series(tmp_path / "in", 1)
    site = make_result()
    site.model = {**site.model, "report_threshold": "0.650"}
    seg, sr = (pydicom.dcmread(p) for p in write_series_results([(paths[0], [site])], tmp_path / "site",
                                                                device_uid="1.2.826.0.1.3680043.8.498.1"))
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmParameters == "report_threshold=0.650"
    texts = [getattr(item, "TextValue", "") for item in _items(sr.ContentSequence)]
    assert "report_threshold=0.650" in texts
    seg0, sr0 = (pydicom.dcmread(p) for p in write_series_results([(paths[0], [make_result()])], tmp_path / "shipped",
                                                                  device_uid="1.2.826.0.1.3680043.8.498.1"))
    assert "AlgorithmParameters" not in seg0.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert not any("report_threshold" in getattr(item, "TextValue", "") for item in _items(sr0.ContentSequence))
    for path in sorted((tmp_path / "site").glob("*.dcm")):  # still valid DICOM with the parameter
        assert dciodvfy_errors(path) == [], path.name
