"""Pull studies from a PACS (e.g. Orthanc) by DICOM query/retrieve: C-FIND at study level,
then C-GET (the PACS sends the images back over the same association, so the PACS needs no
route back to livus). Retrieved images become livus studies (``source="pacs"``) and are
analysed like uploads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)

from livus.service.dicom_listener import STATUS_OK, STATUS_OUT_OF_RESOURCES, queue_studies, store_dataset

log = logging.getLogger("livus.pacs")

RETRIEVED_STORAGE_CLASSES = (
    UltrasoundImageStorage, UltrasoundMultiFrameImageStorage,
    SecondaryCaptureImageStorage, MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
)
PENDING = (0xFF00, 0xFF01)


class PacsError(RuntimeError):
    pass


@dataclass
class PacsStudy:
    study_instance_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    description: str


class PacsClient:
    def __init__(self, host: str, port: int, called_ae: str = "ORTHANC", calling_ae: str = "LIVUS",
                 timeout_s: float = 30.0) -> None:
        self.host, self.port, self.called_ae, self.calling_ae, self.timeout_s = host, port, called_ae, calling_ae, timeout_s

    def _ae(self) -> AE:
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        return ae

    def find_studies(self, patient_id: str = "", study_instance_uid: str = "") -> list[PacsStudy]:
        """Studies matching a patient ID and/or StudyInstanceUID (exact match, no wildcards)."""
        if any(ch in (patient_id + study_instance_uid) for ch in "*?\\"):
            raise PacsError("wildcards and backslashes are not allowed in PACS queries")
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.PatientID = patient_id
        q.StudyInstanceUID = study_instance_uid
        q.PatientName = ""
        q.StudyDate = ""
        q.StudyDescription = ""
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae)
        if not assoc.is_established:
            raise PacsError(f"cannot associate with PACS {self.called_ae}@{self.host}:{self.port}")
        found: list[PacsStudy] = []
        try:
            for status, ident in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind):
                if status is None:
                    raise PacsError("PACS query timed out or the connection broke")
                if status.Status in PENDING and ident is not None:
                    found.append(PacsStudy(str(ident.get("StudyInstanceUID", "")), str(ident.get("PatientID", "")),
                                           str(ident.get("PatientName", "")), str(ident.get("StudyDate", "")),
                                           str(ident.get("StudyDescription", ""))))
                elif status.Status not in (0x0000, *PENDING):
                    raise PacsError(f"PACS C-FIND failed with status 0x{status.Status:04X}")
        finally:
            assoc.release()
        return [s for s in found if s.study_instance_uid]

    def get_study(self, study_instance_uid: str, on_dataset: Any) -> int:
        """C-GET one study; ``on_dataset(ds)`` is called for each image received. Returns the count."""
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        roles = []
        for cls in RETRIEVED_STORAGE_CLASSES:
            ae.add_requested_context(cls)
            roles.append(build_role(cls, scp_role=True))
        count = 0

        def handle_store(event: Any) -> int:
            nonlocal count
            try:
                ds = event.dataset
                ds.file_meta = event.file_meta
                on_dataset(ds)
                count += 1
                return STATUS_OK
            except Exception:  # noqa: BLE001 - report to the PACS, keep the association
                log.exception("storing a retrieved image failed")
                return STATUS_OUT_OF_RESOURCES

        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae, ext_neg=roles,
                             evt_handlers=[(evt.EVT_C_STORE, handle_store)])
        if not assoc.is_established:
            raise PacsError(f"cannot associate with PACS {self.called_ae}@{self.host}:{self.port}")
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = study_instance_uid
        try:
            final = None
            for status, _ident in assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet):
                if status is None:
                    raise PacsError("PACS retrieve timed out or the connection broke")
                final = status.Status
            if final not in (0x0000, 0xB000) and count == 0:
                raise PacsError(f"PACS C-GET failed with status 0x{(final or 0):04X}")
        finally:
            assoc.release()
        return count


def import_retrieved(state: Any, client: PacsClient, patient_id: str = "", study_instance_uid: str = "",
                     user: Any = None) -> list[str]:
    """Find matching studies on the PACS, retrieve each into a new livus study and queue it for
    analysis; returns the livus study uids."""
    from livus.service.storage import Study

    uids = []
    for found in client.find_studies(patient_id, study_instance_uid):
        holder: dict[str, int | None] = {"id": None}

        def keep(ds: Dataset, holder: dict[str, int | None] = holder) -> None:
            holder["id"] = store_dataset(state, ds, holder["id"], "pacs")

        n = client.get_study(found.study_instance_uid, keep)
        if holder["id"] is None:
            continue
        with state.sm() as db:
            study = db.get(Study, holder["id"])
            if user is not None:
                study.created_by = user.id
            uids.append(study.uid)
            db.commit()
        queue_studies(state, [holder["id"]], f"{n} image(s) retrieved from PACS {client.called_ae}")
    return uids
