"""Small DICOM helpers for the listener and PACS tests (fake patients only)."""

from __future__ import annotations

import socket
from pathlib import Path

import pydicom
from pynetdicom import AE
from pynetdicom.sop_class import UltrasoundImageStorage, Verification

from livus.io.dicom_write import write_us_dicom

from .conftest import ultrasound_like


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_us_dicom(folder: Path, n: int, patient_id: str, study_uid: str | None = None) -> list[Path]:
    """``n`` single-frame US images of one study (a shared StudyInstanceUID)."""
    paths = []
    for i in range(n):
        p = write_us_dicom(folder / f"img{i}.dcm", [ultrasound_like(256, 192, seed=i)], (0.3, 0.3),
                           {"id": patient_id, "name": "TEST^PATIENT"})
        ds = pydicom.dcmread(p)
        if study_uid is None:
            study_uid = ds.StudyInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.InstanceNumber = i + 1
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def c_store(paths: list[Path], port: int, called_ae: str, calling_ae: str = "TESTSCU") -> list[int]:
    """Send files with a pynetdicom client to 127.0.0.1:port; returns the statuses."""
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(UltrasoundImageStorage)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    assert assoc.is_established, "association refused"
    statuses = []
    try:
        for p in paths:
            status = assoc.send_c_store(pydicom.dcmread(p))
            statuses.append(int(status.Status) if status else -1)
    finally:
        assoc.release()
    return statuses


# Compressed files pydicom ships (offline; ``pydicom.data.get_testdata_file`` finds them in the
# installed package): one per transfer syntax the listener and C-GET must accept.
COMPRESSED_TEST_FILES = {
    "1.2.840.10008.1.2.4.50": "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "JPGExtended.dcm",  # JPEG extended (12-bit)
    "1.2.840.10008.1.2.4.70": "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80": "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "JPEGLSNearLossless_08.dcm",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "examples_jpeg2k.dcm",  # JPEG 2000 lossless (an ultrasound image)
    "1.2.840.10008.1.2.4.91": "693_J2KI.dcm",  # JPEG 2000
    "1.2.840.10008.1.2.5": "SC_rgb_rle.dcm",  # RLE
    "1.2.840.10008.1.2.1.99": "image_dfl.dcm",  # deflate
}


def compressed_test_file(transfer_syntax: str) -> Path:
    """The local pydicom test file of ``transfer_syntax`` (never downloaded)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(COMPRESSED_TEST_FILES[transfer_syntax], download=False)
    assert path is not None, f"pydicom test file {COMPRESSED_TEST_FILES[transfer_syntax]} missing"
    return Path(path)


def compressed_dataset(transfer_syntax: str, patient_id: str = "COMP-1") -> pydicom.Dataset:
    """The test file of ``transfer_syntax`` with the UIDs and patient a study needs (some test
    files lack them) and no other change (pixel data as compressed)."""
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(compressed_test_file(transfer_syntax))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not ds.get(keyword):
            setattr(ds, keyword, generate_uid())
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = patient_id
    return ds


def send_datasets(datasets: list, port: int, called_ae: str = "LIVUS", calling_ae: str = "TESTSCU",
                  tls: tuple | None = None):
    """C-STORE ``datasets`` each in its own transfer syntax; returns (statuses or None when the
    association was refused, the association)."""
    ae = AE(ae_title=calling_ae)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae, tls_args=tls)
    if not assoc.is_established:
        return None, assoc
    try:
        statuses = []
        for ds in datasets:
            status = assoc.send_c_store(ds)
            statuses.append(int(status.Status) if status and "Status" in status else -1)
    finally:
        assoc.release()
    return statuses, assoc
