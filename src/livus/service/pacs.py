"""Talk to a PACS (e.g. Orthanc) over DICOM DIMSE: find (C-FIND, study level), retrieve (C-GET:
the PACS sends the images back over the same association, so it needs no route to livus; or
C-MOVE to livus's own listener) and store results (C-STORE SCU). Retrieved images become livus
studies (``source="pacs"``) and are analysed like uploads.

C-GET proposes every transfer syntax livus decodes (JPEG, JPEG-LS, JPEG 2000, RLE, deflate,
uncompressed), each in its own presentation context, so the PACS sends compressed images as
stored instead of failing to transcode them.

Every failure is a :class:`PacsError` with a reason a user can act on (refused association and
why, unreachable host, timeout, failed status): the API answers it with 502, never a 500.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import Any, Callable, Iterator

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from livus.io.readers import decodable_transfer_syntaxes
from livus.service.auth import validate_department
from livus.service.dicom_listener import STATUS_OK, STATUS_OUT_OF_RESOURCES, queue_studies, store_dataset
from livus.service.pacs_common import (  # noqa: F401 - PacsError and PacsStudy are part of this module's API
    OTHER_STUDY_CLASSES,
    PENDING,
    REJECT_TEXT,
    RETRIEVED_STORAGE_CLASSES,
    SUCCESS_OR_WARNING,
    PacsError,
    PacsStudy,
    check_query,
    status_text,
)

log = logging.getLogger("livus.pacs")

class PacsClient:
    """DIMSE client of one PACS (``called_ae`` at ``host:port``), as AE ``calling_ae``."""

    def __init__(self, host: str, port: int, called_ae: str = "ORTHANC", calling_ae: str = "LIVUS",
                 timeout_s: float = 30.0, tls_ca: str | None = None, move_destination: str | None = None) -> None:
        self.host, self.port, self.called_ae, self.calling_ae = host, port, called_ae, calling_ae
        self.timeout_s, self.tls_ca, self.move_destination = timeout_s, tls_ca, move_destination

    @classmethod
    def from_config(cls, cfg: Any) -> "PacsClient":
        """From :class:`livus.config.ServiceConfig` (``pacs_*``; C-MOVE goes to ``dicom_ae_title``)."""
        if not cfg.pacs_host:
            raise PacsError("no PACS configured (pacs_host)")
        return cls(cfg.pacs_host, cfg.pacs_port, cfg.pacs_ae_title, cfg.dicom_ae_title, cfg.pacs_timeout_s,
                   cfg.pacs_tls_ca, cfg.dicom_ae_title if cfg.pacs_retrieve == "move" else None)

    @property
    def name(self) -> str:
        return f"{self.called_ae}@{self.host}:{self.port}"

    def _ae(self) -> AE:
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        ae.connection_timeout = self.timeout_s
        return ae

    def _associate(self, ae: AE, **kwargs: Any) -> Any:
        """An established association, or ``PacsError`` saying why not."""
        tls = None
        if self.tls_ca:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            tls = (ctx, self.host)
        started = time.monotonic()
        try:
            assoc = ae.associate(self.host, self.port, ae_title=self.called_ae, tls_args=tls, **kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            raise PacsError(f"cannot associate with PACS {self.name}: {exc}") from None
        if assoc.is_established:
            return assoc
        if assoc.is_rejected and assoc.acceptor.primitive is not None:
            rj = assoc.acceptor.primitive
            why = REJECT_TEXT.get((rj.result_source, rj.diagnostic), f"source {rj.result_source}, reason {rj.diagnostic}")
            raise PacsError(f"PACS {self.name} refused the association from {self.calling_ae}: {why}")
        try:  # pynetdicom reports "connection refused" as an abort: tell them apart
            socket.create_connection((self.host, self.port), timeout=min(self.timeout_s, 5.0)).close()
        except OSError as exc:
            raise PacsError(f"cannot associate with PACS {self.name}: cannot connect ({exc.strerror or exc})") from None
        if time.monotonic() - started >= 0.9 * self.timeout_s:  # pynetdicom aborts when its timer runs out
            raise PacsError(f"PACS {self.name} gave no answer within {self.timeout_s:g} s (pacs_timeout_s)")
        if assoc.is_aborted:
            raise PacsError(f"PACS {self.name} aborted the association (wrong port, TLS mismatch or not a DICOM server?)")
        raise PacsError(f"cannot associate with PACS {self.name}: no answer within {self.timeout_s:g} s "
                        "or connection refused")

    def _responses(self, responses: Iterator[tuple[Any, Any]], what: str) -> Iterator[tuple[int, Dataset, Any]]:
        """``(status code, status data set, identifier)`` of a DIMSE exchange; ``PacsError`` on
        timeout/abort."""
        try:
            for status, ident in responses:
                if not status or "Status" not in status:
                    raise PacsError(f"PACS {what} got no answer from {self.name} (timed out after {self.timeout_s:g} s, "
                                    "or the PACS aborted the association)")
                yield int(status.Status), status, ident
        except (RuntimeError, ValueError) as exc:  # e.g. no accepted presentation context
            if isinstance(exc, PacsError):
                raise
            raise PacsError(f"PACS {what} with {self.name} failed: {exc}") from None

    def echo(self) -> None:
        """C-ECHO: ``PacsError`` unless the PACS answers."""
        from pynetdicom.sop_class import Verification

        ae = self._ae()
        ae.add_requested_context(Verification)
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or status.Status != 0:
            raise PacsError(f"PACS {self.name} did not answer C-ECHO")

    def find_studies(self, patient_id: str = "", study_instance_uid: str = "") -> list[PacsStudy]:
        """Studies matching a patient ID and/or StudyInstanceUID (exact match, no wildcards)."""
        check_query(patient_id, study_instance_uid)
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.PatientID = patient_id
        q.StudyInstanceUID = study_instance_uid
        q.PatientName = ""
        q.StudyDate = ""
        q.StudyDescription = ""
        assoc = self._associate(ae)
        found: list[PacsStudy] = []
        try:
            responses = assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind)
            for code, _status, ident in self._responses(responses, "C-FIND"):
                if code in PENDING and ident is not None:
                    found.append(PacsStudy.from_identifier(ident))
                elif code not in (0x0000, *PENDING):
                    raise PacsError(f"PACS C-FIND failed with status {status_text(code)}")
        finally:
            assoc.release()
        return [s for s in found if s.study_instance_uid]

    def get_study(self, study_instance_uid: str, on_dataset: Callable[[Dataset], None]) -> int:
        """Retrieve one study, ``on_dataset(ds)`` for each image received (C-GET), or have it sent
        to livus's listener (C-MOVE, when ``move_destination`` is set; ``on_dataset`` is not
        called). Returns the number of images."""
        if self.move_destination:
            return self.move_study(study_instance_uid, self.move_destination)
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        roles = []
        for cls in RETRIEVED_STORAGE_CLASSES:
            for syntax in decodable_transfer_syntaxes():  # one context each: the PACS picks the stored one
                ae.add_requested_context(cls, syntax)
            roles.append(build_role(cls, scp_role=True))
        for other in OTHER_STUDY_CLASSES:  # accepted and dropped (see pacs_common)
            ae.add_requested_context(other, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
            roles.append(build_role(other, scp_role=True))
        images = {str(c) for c in RETRIEVED_STORAGE_CLASSES}
        count = 0

        def handle_store(event: Any) -> int:
            nonlocal count
            try:
                if str(event.request.AffectedSOPClassUID) not in images:
                    return STATUS_OK  # not an image livus analyses (SR, SEG, presentation state ...)
                ds = event.dataset
                ds.file_meta = event.file_meta
                on_dataset(ds)
                count += 1
                return STATUS_OK
            except Exception:  # noqa: BLE001 - report to the PACS, keep the association
                log.exception("storing a retrieved image failed")
                return STATUS_OUT_OF_RESOURCES

        assoc = self._associate(ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, handle_store)])
        try:
            final = None
            responses = assoc.send_c_get(_study_query(study_instance_uid), StudyRootQueryRetrieveInformationModelGet)
            for code, _status, _ident in self._responses(responses, "C-GET"):
                final = code
            if final not in SUCCESS_OR_WARNING and count == 0:
                raise PacsError(f"PACS C-GET failed with status {status_text(final or 0)}")
        finally:
            assoc.release()
        return count

    def move_study(self, study_instance_uid: str, destination_ae: str) -> int:
        """C-MOVE one study to ``destination_ae`` (the PACS must know that AE's address);
        returns the completed sub-operations."""
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = self._associate(ae)
        try:
            final, done = None, 0
            responses = assoc.send_c_move(_study_query(study_instance_uid), destination_ae,
                                          StudyRootQueryRetrieveInformationModelMove)
            for code, status, _ident in self._responses(responses, "C-MOVE"):
                final, done = code, int(status.get("NumberOfCompletedSuboperations", done) or done)
            if final not in SUCCESS_OR_WARNING:
                raise PacsError(f"PACS C-MOVE to {destination_ae} failed with status {status_text(final or 0)}")
        finally:
            assoc.release()
        return done

    def store(self, datasets: list[Dataset]) -> None:
        """C-STORE ``datasets`` (SR, SEG ...) to the PACS; ``PacsError`` unless every one succeeds."""
        ae = self._ae()
        for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
            ae.add_requested_context(sop_class, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
        assoc = self._associate(ae)
        try:
            for ds in datasets:
                try:
                    status = assoc.send_c_store(ds)
                except (RuntimeError, ValueError) as exc:
                    raise PacsError(f"PACS C-STORE to {self.name} failed: {exc}") from None
                if not status or "Status" not in status:
                    raise PacsError(f"PACS C-STORE to {self.name} got no answer (timed out after {self.timeout_s:g} s)")
                if int(status.Status) not in SUCCESS_OR_WARNING and not 0xB000 <= int(status.Status) <= 0xBFFF:
                    raise PacsError(f"PACS C-STORE to {self.name} failed with status {status_text(int(status.Status))}")
        finally:
            assoc.release()


def _study_query(study_instance_uid: str) -> Dataset:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = study_instance_uid
    return q


def import_retrieved(state: Any, client: Any, patient_id: str = "", study_instance_uid: str = "",
                     user: Any = None) -> list[str]:
    """Find matching studies on the PACS (``client``: :class:`PacsClient` or
    :class:`livus.service.dicomweb.DicomwebPacs`), retrieve each into a new livus study and queue
    it for analysis; returns the livus study uids. With C-MOVE the images arrive at the listener,
    which queues them itself; their livus studies are returned once the move has finished.
    The studies belong to :func:`pull_department` (the puller's, unless ``pacs_department`` says)."""
    from sqlalchemy import func, select, update

    from livus.service.storage import Study

    department = pull_department(state.cfg, user)
    uids = []
    for found in client.find_studies(patient_id, study_instance_uid):
        holder: dict[str, int | None] = {"id": None}

        def keep(ds: Dataset, holder: dict[str, int | None] = holder) -> None:
            holder["id"] = store_dataset(state, ds, holder["id"], "pacs", department)

        with state.sm() as db:
            last_id = db.scalar(select(func.max(Study.id))) or 0
        n = client.get_study(found.study_instance_uid, keep)
        if getattr(client, "move_destination", None):  # the listener stored and queued them
            with state.sm() as db:
                moved = (Study.study_instance_uid == found.study_instance_uid, Study.id > last_id)
                db.execute(update(Study).where(*moved).values(department=department))  # not the PACS AE's
                uids += db.scalars(select(Study.uid).where(*moved).order_by(Study.id)).all()
                db.commit()
            continue
        if holder["id"] is None:
            continue
        with state.sm() as db:
            study = db.get(Study, holder["id"])
            if user is not None:
                study.created_by = user.id
            uids.append(study.uid)
            db.commit()
        queue_studies(state, [holder["id"]], f"{n} image(s) retrieved from PACS {client.name}")
    return uids


def pull_department(cfg: Any, user: Any) -> str:
    """The department of studies pulled from the PACS by ``user``: ``pacs_department`` when set,
    else the user's own ('' without a user)."""
    if cfg.pacs_department is None:
        return getattr(user, "department", "") or ""
    try:
        return validate_department(cfg.pacs_department)
    except ValueError as exc:
        raise PacsError(f"pacs_department: {exc}") from None


def retrieve_client(cfg: Any) -> Any:
    """The client ``/api/pacs/retrieve`` uses: DICOMweb when ``pacs_retrieve`` is ``dicomweb``
    (or only ``dicomweb_url`` is set), else DIMSE (C-GET, or C-MOVE for ``move``)."""
    if cfg.pacs_retrieve not in ("get", "move", "dicomweb"):
        raise PacsError(f"pacs_retrieve must be get, move or dicomweb, not {cfg.pacs_retrieve!r}")
    if cfg.pacs_retrieve == "dicomweb" or (not cfg.pacs_host and cfg.dicomweb_url):
        from livus.service.dicomweb import DicomwebPacs

        return DicomwebPacs.from_config(cfg)
    if cfg.pacs_retrieve == "move" and not cfg.dicom_port:
        raise PacsError("pacs_retrieve: move needs livus's DICOM listener (dicom_port) as the C-MOVE destination")
    return PacsClient.from_config(cfg)
