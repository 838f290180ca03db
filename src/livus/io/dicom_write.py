"""Write 8-bit grey ultrasound images as DICOM (US Image Storage / US Multi-frame Image
Storage) with a Sequence of Ultrasound Regions giving the true pixel spacing.

Used by the simulator (and tests of DICOM reading and de-identification). pydicom builds the
data set; no pixel compression (Explicit VR Little Endian).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
PHYSICAL_UNITS_CM = 3


def ultrasound_region(width: int, height: int, pixel_spacing_mm: tuple[float, float],
                      region: tuple[int, int, int, int] | None = None) -> Dataset:
    """One item of the Sequence of Ultrasound Regions (tissue 2-D region, cm per pixel)."""
    x0, y0, x1, y1 = region or (0, 0, width - 1, height - 1)
    r = Dataset()
    r.RegionSpatialFormat = 1  # 2-D tissue
    r.RegionDataType = 1  # tissue
    r.RegionFlags = 0
    r.RegionLocationMinX0 = int(x0)
    r.RegionLocationMinY0 = int(y0)
    r.RegionLocationMaxX1 = int(x1)
    r.RegionLocationMaxY1 = int(y1)
    r.PhysicalUnitsXDirection = PHYSICAL_UNITS_CM
    r.PhysicalUnitsYDirection = PHYSICAL_UNITS_CM
    r.PhysicalDeltaX = float(pixel_spacing_mm[0]) / 10.0
    r.PhysicalDeltaY = float(pixel_spacing_mm[1]) / 10.0
    return r


def write_us_dicom(path: str | Path, frames: list[np.ndarray], pixel_spacing_mm: tuple[float, float],
                   patient: dict, frame_time_ms: float | None = None,
                   region: tuple[int, int, int, int] | None = None, acquired_at: datetime | None = None,
                   manufacturer: str = "LIVUS-SIM", model: str = "phantom") -> Path:
    """Write ``frames`` (uint8 (H, W) each) as one DICOM file.

    One frame → US Image Storage; several → US Multi-frame Image Storage with ``FrameTime``
    (``frame_time_ms``, default 100 ms). ``patient`` keys (all optional, fake values only):
    name, id, birth_date (YYYYMMDD), sex, institution, referring_physician, accession.
    ``region`` is the tissue region ``(x0, y0, x1, y1)`` in pixels (default: whole image).
    """
    path = Path(path)
    arr = np.stack([np.asarray(f, np.uint8) for f in frames])
    if arr.ndim != 3:
        raise ValueError("frames must be 2-D grey images")
    n, H, W = arr.shape
    multi = n > 1
    when = acquired_at or datetime(2024, 1, 1, 12, 0, 0)
    sop_class = US_MULTIFRAME_IMAGE_STORAGE if multi else US_IMAGE_STORAGE

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.InstitutionName = patient.get("institution", "Simulated General Hospital")
    ds.ReferringPhysicianName = patient.get("referring_physician", "DOE^JANE")
    ds.PatientName = patient.get("name", "ANON^PATIENT")
    ds.PatientID = patient.get("id", "SIM000")
    ds.PatientBirthDate = patient.get("birth_date", "19600101")
    ds.PatientSex = patient.get("sex", "O")
    ds.AccessionNumber = patient.get("accession", "ACC0001")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.BodyPartExamined = "ABDOMEN"

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = H
    ds.Columns = W
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.SequenceOfUltrasoundRegions = Sequence([ultrasound_region(W, H, pixel_spacing_mm, region)])
    if multi:
        ds.NumberOfFrames = n
        ds.FrameTime = float(frame_time_ms or 100.0)
        ds.FrameIncrementPointer = 0x00181063  # Frame Time
        ds.CineRate = int(round(1000.0 / ds.FrameTime))
    ds.PixelData = arr.tobytes() if multi else arr[0].tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
