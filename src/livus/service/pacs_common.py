"""What the DIMSE (:mod:`livus.service.pacs`) and DICOMweb (:mod:`livus.service.dicomweb`)
clients share: the error type, a found study, the image classes livus retrieves, query checks
and DICOM status texts."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom.sop_class import (
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)
from pynetdicom.status import code_to_category

RETRIEVED_STORAGE_CLASSES = (
    UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, SecondaryCaptureImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage, MultiFrameTrueColorSecondaryCaptureImageStorage,
)
# Objects a study on a PACS often holds besides its images (livus's own SR/SEG among them): C-GET
# accepts them too (a PACS such as Orthanc fails the whole C-GET when one object has no context),
# and livus drops them.
OTHER_STUDY_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
)
PENDING = (0xFF00, 0xFF01)
SUCCESS_OR_WARNING = (0x0000, 0xB000)
STATUS_TEXT = {  # C-FIND/C-GET/C-MOVE/C-STORE failures (PS3.4 C.4, B.2)
    0xA700: "out of resources", 0xA701: "out of resources (cannot count matches)",
    0xA702: "out of resources (cannot do sub-operations)", 0xA801: "move destination unknown",
    0xA900: "identifier does not match SOP class", 0xAA00: "none of the frames requested were found",
    0xC000: "unable to process (e.g. cannot convert the images to a transfer syntax livus accepted)",
    0xFE00: "cancelled", 0x0122: "SOP class not supported", 0x0211: "unrecognised operation",
}
REJECT_TEXT = {  # A-ASSOCIATE-RJ (source, diagnostic)
    (1, 1): "no reason given",
    (1, 2): "application context not supported",
    (1, 3): "calling AE title not recognised: add livus to the PACS's known modalities (Orthanc: DicomModalities)",
    (1, 7): "called AE title not recognised: check pacs_ae_title",
    (2, 1): "no reason given (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded (too many associations)",
}


class PacsError(RuntimeError):
    """A PACS operation failed; the message says why (shown to the user)."""


@dataclass
class PacsStudy:
    study_instance_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    description: str

    @classmethod
    def from_identifier(cls, ident: Dataset) -> "PacsStudy":
        return cls(*(str(ident.get(k, "") or "") for k in
                     ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyDescription")))


def status_text(code: int) -> str:
    """``0xC000 (failure: unable to process ...)``."""
    category = code_to_category(code).lower()
    return f"0x{code:04X} ({category}{': ' + STATUS_TEXT[code] if code in STATUS_TEXT else ''})"


def check_query(patient_id: str, study_instance_uid: str) -> None:
    """Exact matches only: ``PacsError`` for wildcards and backslashes."""
    if any(ch in (patient_id + study_instance_uid) for ch in "*?\\"):
        raise PacsError("wildcards and backslashes are not allowed in PACS queries")

