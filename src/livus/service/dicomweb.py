"""DICOMweb client (``dicomweb-client``): QIDO-RS search, WADO-RS retrieve and STOW-RS store
against a DICOMweb server (Orthanc's DICOMweb plugin, dcm4chee, Google/Azure health APIs).

:class:`DicomwebPacs` offers the same ``find_studies`` / ``get_study`` / ``store`` as the DIMSE
:class:`livus.service.pacs.PacsClient`, so retrieval (:func:`livus.service.pacs.import_retrieved`)
and sending results back work with either. WADO-RS asks for the stored transfer syntax
(``transfer-syntax=*``): compressed images come as stored and are decoded by livus. Only image
objects livus analyses are kept (SR, SEG, presentation states are skipped). Every failure is a
:class:`livus.service.pacs_common.PacsError` with the reason (HTTP status, unreachable server, timeout).

Server and auth come from the service YAML: ``dicomweb_url``, ``dicomweb_username`` /
``dicomweb_password`` (HTTP basic) or ``dicomweb_token`` (bearer), ``dicomweb_ca``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session, create_session_from_user_pass
from pydicom.dataset import Dataset

from livus.service.pacs_common import RETRIEVED_STORAGE_CLASSES, PacsError, PacsStudy, check_query

log = logging.getLogger("livus.dicomweb")

QIDO_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyDescription")
ANY_TRANSFER_SYNTAX = (("application/dicom", "*"),)


def _reason(exc: Exception) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        r = exc.response
        hint = " (check dicomweb_username/dicomweb_password or dicomweb_token)" if r.status_code in (401, 403) else ""
        return f"HTTP {r.status_code} {r.reason}{hint}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class DicomwebPacs:
    """A DICOMweb server at ``url`` (base URL of the QIDO/WADO/STOW services)."""

    move_destination = None  # the DIMSE client's C-MOVE option; never used here

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 token: str | None = None, ca_bundle: str | None = None, timeout_s: float = 60.0) -> None:
        if username and password:
            session = create_session_from_user_pass(username, password)
        else:
            session = create_session()
        if ca_bundle:
            session.verify = ca_bundle
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.url = url.rstrip("/")
        self._client = DICOMwebClient(self.url, session=session, headers=headers, timeout=timeout_s)
        # one quick retry (busy server, dropped connection); the API answers a person waiting, and
        # sending results back has its own retries (livus.service.results_out)
        self._client.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=250)

    @classmethod
    def from_config(cls, cfg: Any) -> "DicomwebPacs":
        """From :class:`livus.config.ServiceConfig` (``dicomweb_*``)."""
        if not cfg.dicomweb_url:
            raise PacsError("no DICOMweb server configured (dicomweb_url)")
        return cls(cfg.dicomweb_url, cfg.dicomweb_username, cfg.dicomweb_password, cfg.dicomweb_token,
                   cfg.dicomweb_ca, cfg.dicomweb_timeout_s)

    @property
    def name(self) -> str:
        return self.url

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (requests.RequestException, ValueError, OSError) as exc:
            raise PacsError(f"DICOMweb {what} at {self.url} failed: {_reason(exc)}") from None

    def find_studies(self, patient_id: str = "", study_instance_uid: str = "") -> list[PacsStudy]:
        """QIDO-RS studies matching a patient ID and/or StudyInstanceUID (exact match)."""
        check_query(patient_id, study_instance_uid)
        filters = {k: v for k, v in (("PatientID", patient_id), ("StudyInstanceUID", study_instance_uid)) if v}
        found = self._call("search (QIDO-RS)", lambda: self._client.search_for_studies(
            search_filters=filters, fields=list(QIDO_FIELDS)))
        studies = [PacsStudy.from_identifier(Dataset.from_json(item)) for item in found or []]
        # exact match: some servers match PatientID loosely
        return [s for s in studies if s.study_instance_uid and (not patient_id or s.patient_id == patient_id)
                and (not study_instance_uid or s.study_instance_uid == study_instance_uid)]

    def get_study(self, study_instance_uid: str, on_dataset: Callable[[Dataset], None]) -> int:
        """WADO-RS the study's image objects, ``on_dataset(ds)`` for each; returns the count."""
        image_classes = {str(c) for c in RETRIEVED_STORAGE_CLASSES}

        def run() -> int:
            n = 0
            for ds in self._client.iter_study(study_instance_uid, media_types=ANY_TRANSFER_SYNTAX):
                if str(ds.get("SOPClassUID", "")) in image_classes:
                    on_dataset(ds)
                    n += 1
            return n

        return self._call("retrieve (WADO-RS)", run)

    def store(self, datasets: list[Dataset]) -> None:
        """STOW-RS ``datasets``; ``PacsError`` unless the server stored every one."""
        answer = self._call("store (STOW-RS)", lambda: self._client.store_instances(list(datasets)))
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            reasons = ", ".join(f"0x{int(item.get('FailureReason', 0)):04X}" for item in failed)
            raise PacsError(f"DICOMweb store (STOW-RS) at {self.url}: {len(failed)} object(s) refused ({reasons})")
