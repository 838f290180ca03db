"""Synthetic frames and results shared by the report tests (no real data needed)."""

from __future__ import annotations

import cv2
import numpy as np

from livus.types import CaseResult, FrameResult, Lesion, LesionTrack, PatientBackground


def make_frame(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """Grey speckle inside a fan-like trapezoid, black outside; a dark round 'lesion' at (120, 110)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), np.uint8)
    fan = np.array([[width * 0.4, 5], [width * 0.6, 5], [width - 5, height - 5], [5, height - 5]], np.int32)
    cv2.fillPoly(img, [fan], 1)
    speckle = rng.gamma(2.0, 50.0, size=(height, width)).clip(0, 255).astype(np.uint8)
    img = img * speckle
    cv2.circle(img, (120, 110), 25, 30, -1)
    return img


def make_result(width: int = 320, height: int = 240, spacing: tuple[float, float] | None = (0.25, 0.25)) -> FrameResult:
    fan = [[width * 0.4, 5.0], [width * 0.6, 5.0], [width - 5.0, height - 5.0], [5.0, height - 5.0]]
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    poly = np.stack([120 + 26 * np.cos(t), 110 + 22 * np.sin(t)], axis=1).tolist()
    l1 = Lesion(id=1, score=0.91, center_px=(120.0, 110.0), long_axis_px=52.0, short_axis_px=44.0, angle_deg=0.0,
                polygon_px=poly, malignancy=0.83,
                features={"echo_hypo": 0.9, "halo": 0.7, "posterior_enhancement": 0.1})
    l2 = Lesion(id=2, score=0.45, center_px=(230.0, 180.0), long_axis_px=30.0, short_axis_px=18.0, angle_deg=30.0,
                malignancy=None)
    for lesion in (l1, l2):
        lesion.fill_mm(spacing)
    return FrameResult(source="/data/PATIENT_SECRET/scan1.dcm", frame_index=0, image_size_px=(width, height),
                       pixel_spacing_mm=spacing, fan_polygon_px=fan,
                       liver_polygon_px=[[60.0, 60.0], [260.0, 60.0], [280.0, 220.0], [40.0, 220.0]],
                       lesions=[l1, l2], model={"name": "livus-detector", "version": "0.1.0"})


def make_case(frame_result: FrameResult, assessed: bool = True) -> CaseResult:
    """A case with one track per lesion of ``frame_result``; without the case-level
    assessment (risk, priority, follow-up) when ``assessed`` is False."""
    tracks = [
        LesionTrack(track_id=lesion.id, source=frame_result.source, observations=[(frame_result.frame_index, lesion)],
                    score=lesion.score, malignancy=lesion.malignancy, long_axis_mm=lesion.long_axis_mm,
                    short_axis_mm=lesion.short_axis_mm)
        for lesion in frame_result.lesions
    ]
    case = CaseResult(case_id="case-001", sources=[frame_result.source], tracks=tracks,
                      patient=PatientBackground(hbv=True, cirrhosis=True, afp_ng_ml=25.0),
                      model={"name": "livus-detector", "version": "0.1.0"})
    if assessed:
        case.risk, case.priority, case.follow_up_months = 0.78, "urgent", 0.5
        case.reasons = ["[high_malignancy] malignancy 0.83 ≥ 0.70 → urgent, CEUS/CT within 2 weeks"]
    return case


FAKE_IDENTITY = {
    "PatientName": "Zhang^Wei",
    "PatientID": "MRN-99887766",
    "PatientBirthDate": "19610304",
    "InstitutionName": "Sunshine General Hospital",
    "ReferringPhysicianName": "Li^Qiang",
    "PerformingPhysicianName": "Wang^Fang",
    "OperatorsName": "Chen^Jie",
    "AccessionNumber": "ACC-5550123",
    "StudyDate": "20240517",
    "StudyTime": "101530",
    "StudyID": "STUDY-4711",
}
PRIVATE_VALUE = "PRIVATE-SECRET-42"


def make_us_dicom(pixels, identity: dict | None = None, frames: int = 1, spacing_mm: float | None = 0.25,
                  study_uid: str | None = None):
    """A small uncompressed US Image Storage dataset (MONOCHROME2) with fake identifying values,
    one private tag and, with ``spacing_mm``, a Sequence of Ultrasound Regions."""
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, generate_uid

    ident = dict(FAKE_IDENTITY, **(identity or {}))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = "US"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientSex = "M"
    ds.SeriesDate = ident["StudyDate"]
    ds.ContentDate = ident["StudyDate"]
    ds.AcquisitionDateTime = ident["StudyDate"] + "101531"
    ds.Manufacturer = "FakeScan"
    for key, value in ident.items():
        setattr(ds, key, value)
    block = ds.private_block(0x0011, "FAKE VENDOR", create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUE)
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        data = np.stack([pixels] * frames)
    else:
        data = pixels
    ds.PixelData = np.ascontiguousarray(data, dtype=np.uint8).tobytes()
    if spacing_mm is not None:
        region = Dataset()
        region.RegionSpatialFormat = 1
        region.RegionDataType = 1
        region.RegionLocationMinX0 = 0
        region.RegionLocationMinY0 = 0
        region.RegionLocationMaxX1 = int(ds.Columns) - 1
        region.RegionLocationMaxY1 = int(ds.Rows) - 1
        region.PhysicalUnitsXDirection = 3  # cm
        region.PhysicalUnitsYDirection = 3
        region.PhysicalDeltaX = spacing_mm / 10.0
        region.PhysicalDeltaY = spacing_mm / 10.0
        ds.SequenceOfUltrasoundRegions = pydicom.Sequence([region])
    return ds
