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
