"""DICOM C-STORE listener (pynetdicom): scanners push images, livus stores and analyses them.

Images received in one association are grouped by StudyInstanceUID into livus studies
(``source="dicom"``); when the association ends each study is queued for analysis. Files are
stored under the study's folder with names livus chooses (``0000.dcm`` ...), never names taken
from the data set. Also answers C-ECHO (verification).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from sqlalchemy import func, select

from livus.service import audit
from livus.service.storage import Study, StudyFile

log = logging.getLogger("livus.dicom")

STATUS_OK = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000


def store_dataset(state: Any, ds: Dataset, study_id: int | None, source: str) -> int:
    """Write one received data set into a livus study (a new one when ``study_id`` is None);
    returns the study id. ``ValueError`` when the data set lacks the UIDs it needs."""
    study_uid = str(ds.get("StudyInstanceUID", "") or "")
    if not study_uid or not ds.get("SOPInstanceUID"):
        raise ValueError("data set without StudyInstanceUID/SOPInstanceUID")
    with state.sm() as db:
        study = db.get(Study, study_id) if study_id else None
        if study is None:
            study = Study(source=source, status="receiving", study_instance_uid=study_uid[:128],
                          patient_id=str(ds.get("PatientID", "") or "")[:128],
                          patient_name=str(ds.get("PatientName", "") or "")[:256],
                          description=str(ds.get("StudyDescription", "") or "")[:500])
            db.add(study)
            db.flush()
        n = db.scalar(select(func.count()).select_from(StudyFile).where(StudyFile.study_id == study.id)) or 0
        rel = Path("studies") / study.uid / "files" / f"{n:04d}.dcm"
        path = state.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        db.add(StudyFile(study_id=study.id, original_name=f"{ds.get('Modality', 'DICOM')}-{n + 1:04d}.dcm",
                         stored_path=str(rel), size_bytes=path.stat().st_size))
        db.commit()
        return study.id


def queue_studies(state: Any, study_ids: list[int], detail: str) -> None:
    """Mark received studies as queued and hand them to the analysis worker."""
    with state.sm() as db:
        for sid in study_ids:
            study = db.get(Study, sid)
            if study is not None and study.status == "receiving":
                study.status = "queued"
                audit.record(db, None, "dicom-receive", study.uid, detail, commit=False)
        db.commit()
    for sid in study_ids:
        state.worker.submit(sid)


class DicomListener:
    """A C-STORE SCP on ``host:port`` with AE title ``ae_title`` (runs in pynetdicom's threads)."""

    def __init__(self, state: Any, host: str, port: int, ae_title: str = "LIVUS") -> None:
        self.state = state
        self.host = host
        self.port = port
        self.ae_title = ae_title
        self._server: Any = None
        self._lock = threading.Lock()
        self._open: dict[int, dict[str, int]] = {}  # association id → StudyInstanceUID → study id

    def start(self) -> None:
        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = 0
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_RELEASED, self._on_end), (evt.EVT_ABORTED, self._on_end),
                    (evt.EVT_CONN_CLOSE, self._on_end)]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]
        log.info("DICOM C-STORE listener %s on %s:%d", self.ae_title, self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_store(self, event: Any) -> int:
        key = id(event.assoc)
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            uid = str(ds.get("StudyInstanceUID", "") or "")
            with self._lock:
                known = self._open.setdefault(key, {}).get(uid)
            sid = store_dataset(self.state, ds, known, "dicom")
            with self._lock:
                self._open[key][uid] = sid
            return STATUS_OK
        except ValueError as exc:
            log.warning("C-STORE refused: %s", exc)
            return STATUS_CANNOT_UNDERSTAND
        except Exception:  # noqa: BLE001 - a bad data set must not stop the listener
            log.exception("C-STORE failed")
            return STATUS_OUT_OF_RESOURCES

    def _on_end(self, event: Any) -> None:
        with self._lock:
            studies = self._open.pop(id(event.assoc), {})
        if studies:
            calling = getattr(event.assoc.requestor, "ae_title", "")
            queue_studies(self.state, list(studies.values()), f"from {str(calling).strip()}")
