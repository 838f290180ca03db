"""DICOM C-STORE listener (pynetdicom): scanners and PACS push images, livus stores and analyses them.

Images received in one association are grouped by StudyInstanceUID into livus studies
(``source="dicom"``); when the association ends each study is queued for analysis. Files are
stored under the study's folder with names livus chooses (``0000.dcm`` ...), never names taken
from the data set. Also answers C-ECHO (verification).

Accepted transfer syntaxes: uncompressed, deflate, JPEG baseline/extended/lossless, JPEG-LS,
JPEG 2000 and RLE (:data:`livus.io.readers.DICOM_TRANSFER_SYNTAXES`, those the installed pydicom
plugins decode); the data set is stored as received (no transcoding).

Who may connect (:class:`ListenerOptions`, from the service YAML): the listener binds its own
address (``dicom_host``, loopback by default), answers only to its own AE title (called AE),
and, when ``dicom_calling_ae_titles`` is set, only to those calling AE titles (``"AE"`` or
``"AE@address"``). At most ``dicom_max_associations`` associations at once; a data set larger
than ``dicom_max_object_mb`` is refused (and an association that streams more than that in one
message is cut). Optional DICOM over TLS with the service's certificate (``dicom_tls_cert`` /
``dicom_tls_key``; with ``dicom_tls_ca`` the client must present a certificate signed by that
CA). Every refused association or data set is written to the audit log (``dicom-refused``).

Whose studies they are: ``dicom_departments`` maps a calling AE title (``"AE"`` or
``"AE@address"``, the latter wins) to the department whose physicians see what it sends; a
sender not listed gets ``dicom_default_department`` ('' = admins and users without a department).
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from sqlalchemy import func, select

from livus.io.readers import decodable_transfer_syntaxes
from livus.service import audit
from livus.service.auth import validate_department
from livus.service.storage import Study, StudyFile

log = logging.getLogger("livus.dicom")

STATUS_OK = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000

# A-ASSOCIATE-RJ (result, source, diagnostic): rejected permanent by the service user
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_CALLED_AE = (0x01, 0x01, 0x07)
REJECT_REASONS = {  # (source, diagnostic) → audit text
    (0x01, 0x03): "calling AE title not allowed",
    (0x01, 0x07): "called AE title not recognised",
    (0x02, 0x01): "user identity refused",
    (0x03, 0x01): "temporary congestion",
    (0x03, 0x02): "too many associations",
}


def store_dataset(state: Any, ds: Dataset, study_id: int | None, source: str, department: str = "") -> int:
    """Write one received data set into a livus study (a new one of ``department`` when
    ``study_id`` is None); returns the study id. ``ValueError`` when the data set lacks the UIDs
    it needs."""
    study_uid = str(ds.get("StudyInstanceUID", "") or "")
    if not study_uid or not ds.get("SOPInstanceUID"):
        raise ValueError("data set without StudyInstanceUID/SOPInstanceUID")
    with state.sm() as db:
        study = db.get(Study, study_id) if study_id else None
        if study is None:
            study = Study(source=source, status="receiving", study_instance_uid=study_uid[:128],
                          patient_id=str(ds.get("PatientID", "") or "")[:128],
                          patient_name=str(ds.get("PatientName", "") or "")[:256],
                          description=str(ds.get("StudyDescription", "") or "")[:500], department=department)
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


@dataclass(frozen=True)
class ListenerOptions:
    """Where the listener binds and whom it accepts (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port (tests); the service turns the listener off for port 0
    ae_title: str = "LIVUS"
    calling_ae_titles: tuple[str, ...] = ()  # "AE" or "AE@address"; empty = any calling AE
    max_object_bytes: int = 512 * 1024 * 1024
    max_associations: int = 4
    tls_cert: str | None = None  # PEM certificate (chain) of the service
    tls_key: str | None = None  # PEM private key
    tls_ca: str | None = None  # PEM CA bundle: clients must present a certificate it signed
    departments: dict[str, str] = field(default_factory=dict)  # "AE" or "AE@address" → department
    default_department: str = ""  # of senders not in ``departments``

    @classmethod
    def from_config(cls, cfg: Any) -> "ListenerOptions":
        """From :class:`livus.config.ServiceConfig` (``dicom_*`` fields)."""
        return cls(host=cfg.dicom_host, port=cfg.dicom_port, ae_title=cfg.dicom_ae_title,
                   calling_ae_titles=tuple(cfg.dicom_calling_ae_titles),
                   max_object_bytes=int(cfg.dicom_max_object_mb * 1024 * 1024),
                   max_associations=cfg.dicom_max_associations,
                   tls_cert=cfg.dicom_tls_cert, tls_key=cfg.dicom_tls_key, tls_ca=cfg.dicom_tls_ca,
                   departments=dict(cfg.dicom_departments), default_department=cfg.dicom_default_department)

    def check(self) -> None:
        """``ValueError`` for settings that would open the listener too widely or cannot work."""
        if not 1 <= len(self.ae_title.strip()) <= 16:
            raise ValueError("dicom_ae_title must have 1-16 characters")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("dicom_tls_cert and dicom_tls_key go together")
        if self.tls_ca and not self.tls_cert:
            raise ValueError("dicom_tls_ca needs dicom_tls_cert and dicom_tls_key")
        if not is_loopback(self.host) and not self.calling_ae_titles:
            raise ValueError(f"the DICOM listener binds {self.host} (not loopback): list the scanners and PACS that "
                             "may send in dicom_calling_ae_titles")
        if self.max_associations < 1 or self.max_object_bytes < 1:
            raise ValueError("dicom_max_associations and dicom_max_object_mb must be positive")
        for sender, department in self.departments.items():
            if not 1 <= len(sender.partition("@")[0].strip()) <= 16:
                raise ValueError(f"dicom_departments: {sender!r} is not a calling AE title (1-16 characters, optionally @address)")
            validate_department(department)
        validate_department(self.default_department)

    def department_for(self, calling_ae: str, address: str) -> str:
        """The department of the studies ``calling_ae`` sends from ``address``."""
        any_address = None
        for key, department in self.departments.items():
            ae, _, host = key.partition("@")
            if ae.strip() != calling_ae:
                continue
            if host.strip() == address:
                return department.strip()
            if not host.strip():
                any_address = department
        return (self.default_department if any_address is None else any_address).strip()

    def calling_allowed(self, calling_ae: str, address: str) -> bool:
        """Whether ``calling_ae`` from ``address`` is on the allow-list (empty list: everyone)."""
        if not self.calling_ae_titles:
            return True
        for entry in self.calling_ae_titles:
            ae, _, host = entry.partition("@")
            if ae.strip() == calling_ae and (not host or host.strip() == address):
                return True
        return False

    def ssl_context(self) -> ssl.SSLContext | None:
        """Server-side TLS context (TLS 1.2+), or ``None`` without a certificate."""
        if not self.tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls_cert, self.tls_key)
        if self.tls_ca:
            ctx.load_verify_locations(self.tls_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def storage_ae(ae_title: str) -> AE:
    """An AE that accepts every storage SOP class in every transfer syntax livus decodes, and C-ECHO."""
    ae = AE(ae_title=ae_title)
    syntaxes = decodable_transfer_syntaxes()
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, syntaxes)
    ae.add_supported_context(Verification)
    return ae


class DicomListener:
    """A C-STORE SCP with :class:`ListenerOptions` (runs in pynetdicom's threads)."""

    def __init__(self, state: Any, options: ListenerOptions) -> None:
        options.check()
        self.state = state
        self.options = options
        self.port = options.port
        self._server: Any = None
        self._lock = threading.Lock()
        self._open: dict[int, dict[str, int]] = {}  # association id → StudyInstanceUID → study id
        self._bytes: dict[int, int] = {}  # association id → bytes of the message being received

    @classmethod
    def from_config(cls, state: Any, cfg: Any) -> "DicomListener":
        return cls(state, ListenerOptions.from_config(cfg))

    def start(self) -> None:
        opt = self.options
        ae = storage_ae(opt.ae_title)
        ae.maximum_pdu_size = 1024 * 1024
        ae.maximum_associations = opt.max_associations
        handlers = [(evt.EVT_REQUESTED, self._on_requested), (evt.EVT_REJECTED, self._on_rejected),
                    (evt.EVT_DATA_RECV, self._on_data), (evt.EVT_C_STORE, self._on_store),
                    (evt.EVT_RELEASED, self._on_end), (evt.EVT_ABORTED, self._on_end), (evt.EVT_CONN_CLOSE, self._on_end)]
        self._server = ae.start_server((opt.host, opt.port), block=False, evt_handlers=handlers,
                                       ssl_context=opt.ssl_context())
        self.port = self._server.server_address[1]
        log.info("DICOM C-STORE listener %s on %s:%d%s", opt.ae_title, opt.host, self.port,
                 " (TLS)" if opt.tls_cert else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ------------------------------------------------------------------ refusals
    def _refused(self, calling: str, called: str, address: str, reason: str) -> None:
        log.warning("DICOM association refused: %s (calling %r, called %r, from %s)", reason, calling, called, address)
        try:
            with self.state.sm() as db:
                audit.record(db, None, "dicom-refused", calling[:64], f"{reason}; called AE {called!r}", client=address)
        except Exception:  # noqa: BLE001 - auditing must not break the listener
            log.exception("could not audit a refused association")

    def _on_requested(self, event: Any) -> None:
        rq = event.assoc.requestor.primitive
        calling, called = str(rq.calling_ae_title).strip(), str(rq.called_ae_title).strip()
        address = str(event.assoc.requestor.address)
        if called != self.options.ae_title.strip():
            event.assoc.acse.send_reject(*REJECT_CALLED_AE)
            self._refused(calling, called, address, REJECT_REASONS[REJECT_CALLED_AE[1:]])
        elif not self.options.calling_allowed(calling, address):
            event.assoc.acse.send_reject(*REJECT_CALLING_AE)
            self._refused(calling, called, address, REJECT_REASONS[REJECT_CALLING_AE[1:]])

    def _on_rejected(self, event: Any) -> None:
        """Rejections pynetdicom makes itself (association limit, user identity)."""
        rq, ac = event.assoc.requestor.primitive, event.assoc.acceptor.primitive
        reason = REJECT_REASONS.get((ac.result_source, ac.diagnostic), f"rejected ({ac.result_source}, {ac.diagnostic})")
        if (ac.result_source, ac.diagnostic) == (0x03, 0x02):
            reason += f" (limit {self.options.max_associations})"
        self._refused(str(rq.calling_ae_title).strip(), str(rq.called_ae_title).strip(),
                      str(event.assoc.requestor.address), reason)

    def _on_data(self, event: Any) -> None:
        """Cut an association that streams more than the object limit in one message."""
        key = id(event.assoc)
        with self._lock:
            self._bytes[key] = self._bytes.get(key, 0) + len(event.data)
            over = self._bytes[key] > self.options.max_object_bytes + 1024 * 1024
        if over:
            rq = event.assoc.requestor
            self._refused(str(rq.ae_title).strip(), self.options.ae_title, str(rq.address),
                          f"data set over {self.options.max_object_bytes} bytes: connection closed")
            event.assoc.dul.socket.close()

    # ------------------------------------------------------------------ storage
    def _on_store(self, event: Any) -> int:
        key = id(event.assoc)
        with self._lock:
            self._bytes[key] = 0
        try:
            size = len(event.request.DataSet.getbuffer())
            if size > self.options.max_object_bytes:
                rq = event.assoc.requestor
                self._refused(str(rq.ae_title).strip(), self.options.ae_title, str(rq.address),
                              f"data set of {size} bytes over the limit of {self.options.max_object_bytes}")
                return STATUS_OUT_OF_RESOURCES
            ds = event.dataset
            ds.file_meta = event.file_meta
            uid = str(ds.get("StudyInstanceUID", "") or "")
            with self._lock:
                known = self._open.setdefault(key, {}).get(uid)
            rq = event.assoc.requestor
            department = self.options.department_for(str(rq.ae_title).strip(), str(rq.address))
            sid = store_dataset(self.state, ds, known, "dicom", department)
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
            self._bytes.pop(id(event.assoc), None)
        if studies:
            calling = str(getattr(event.assoc.requestor, "ae_title", "")).strip()
            department = self.options.department_for(calling, str(getattr(event.assoc.requestor, "address", "")))
            queue_studies(self.state, list(studies.values()), f"from {calling}; department {department or '(none)'}")
