"""A file that is both a TIFF (header at byte 0) and a DICOM ('DICM' at byte 128) is read as
DICOM, keeping its metadata (issue 15)."""

from __future__ import annotations

import struct

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage

from livus.io.readers import read_frame, sniff_kind


def _tiff_preamble() -> bytes:
    """128 bytes: a little-endian TIFF header whose first IFD (at byte 8) has no entries."""
    head = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0)
    return head.ljust(128, b"\x00")


def test_dicom_with_tiff_preamble_is_read_as_dicom(tmp_path):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    ds.Modality, ds.Manufacturer, ds.PatientID = "US", "Acme", "P-DUAL"
    pixels = np.arange(40 * 50, dtype=np.uint32).reshape(40, 50).astype(np.uint8)
    ds.set_pixel_data(pixels, "MONOCHROME2", 8)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.preamble = _tiff_preamble()
    path = tmp_path / "dual.tif"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert data[:4] == b"II*\x00" and data[128:132] == b"DICM"
    assert sniff_kind(path) == "dicom"
    frame = read_frame(path)
    assert np.array_equal(frame.pixels, pixels)
    assert frame.metadata["PatientID"] == "P-DUAL" and frame.metadata["Manufacturer"] == "Acme"
