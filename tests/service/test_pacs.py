"""A real PACS: Orthanc (Debian packages ``orthanc``, ``orthanc-dicomweb``) on 127.0.0.1, remote
access disabled, HTTP basic auth on, started for each test and stopped after. livus pulls
(C-FIND + C-GET, DICOMweb), Orthanc pushes to livus (JPEG and JPEG 2000), livus sends its SR and
SEG back (C-STORE and STOW-RS), and every PACS failure is a clear 502."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from fastapi.testclient import TestClient
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from livus.service.dicomweb import DicomwebPacs
from livus.service.pacs import PacsClient, PacsError, import_retrieved
from livus.service.pacs_common import PacsStudy
from livus.service.storage import User

from .conftest import add_department_users, make_service
from .dicom_helpers import c_store, compressed_dataset, free_port, make_us_dicom, send_datasets
from .system_packages import ensure_debian_package

pytestmark = pytest.mark.slow

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
AUTH = ("livus", "orthanc-test-pass")
JPEG, J2K = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90"
EXAMPLE_DICOM = Path(__file__).resolve().parents[2] / "examples" / "dicom" / "small_lesion.dcm"


@pytest.fixture(scope="session")
def orthanc_binary() -> str:
    path = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").is_file() else None)
    path = path or ensure_debian_package("Orthanc", "orthanc")
    if path is None and Path("/usr/sbin/Orthanc").is_file():
        path = "/usr/sbin/Orthanc"
    if path is None:
        pytest.skip("orthanc could not be installed (Debian package 'orthanc'): PACS tests not run")
    if not DICOMWEB_PLUGIN.is_file():  # a plugin, no binary: install it, the DICOMweb tests skip if it stays missing
        ensure_debian_package("orthanc-dicomweb-plugin-not-a-binary", "orthanc-dicomweb")
    return path


def _echo_ok(port: int) -> bool:
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 2
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0


@dataclass
class Orthanc:
    dicom_port: int
    http_port: int
    livus_port: int  # where Orthanc's "livus" modality listens (the livus C-STORE listener)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, method: str, path: str, **kw) -> requests.Response:
        r = requests.request(method, self.url + path, auth=AUTH, timeout=60, **kw)
        r.raise_for_status()
        return r

    def modalities_in(self, patient_id: str) -> list[str]:
        found = self.rest("POST", "/tools/find", json={"Level": "Instance", "Query": {"PatientID": patient_id},
                                                       "Expand": True}).json()
        out = []
        for inst in found:
            series = self.rest("GET", f"/instances/{inst['ID']}/tags?simplify").json()
            out.append(series.get("Modality", ""))
        return sorted(out)


def orthanc_config(store: Path, dicom_port: int, http_port: int, livus_port: int) -> dict:
    """The test Orthanc: loopback only, basic auth, AE checks on, livus and the test client known."""
    return {
        "Name": "livus-test", "StorageDirectory": str(store), "IndexDirectory": str(store),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {AUTH[0]: AUTH[1]},
        "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.is_file() else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomCheckCalledAet": True, "DicomCheckModalityHost": True,
        "DicomModalities": {"livus": ["LIVUS", "127.0.0.1", livus_port], "test": ["TESTSCU", "127.0.0.1", 1]},
        "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
        "ConcurrentJobs": 1, "SaveJobs": False,
    }


@pytest.fixture()
def orthanc(orthanc_binary: str, tmp_path: Path):
    o = Orthanc(free_port(), free_port(), free_port())
    cfg_path = tmp_path / "orthanc.json"
    cfg_path.write_text(json.dumps(orthanc_config(tmp_path / "orthanc-db", o.dicom_port, o.http_port, o.livus_port)))
    log = open(tmp_path / "orthanc.log", "w")
    proc = subprocess.Popen([orthanc_binary, str(cfg_path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if _echo_ok(o.dicom_port):
                break
            time.sleep(0.3)
        else:
            pytest.skip(f"orthanc did not start: {(tmp_path / 'orthanc.log').read_text()[-500:]}")
        yield o
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _needs_dicomweb() -> None:
    if not DICOMWEB_PLUGIN.is_file():
        pytest.skip("Orthanc DICOMweb plugin not installed (Debian package orthanc-dicomweb)")


def _wait_studies(svc, client, n: int, timeout_s: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    studies: list[dict] = []
    while time.monotonic() < deadline:
        studies = client.get("/api/studies").json()
        if len(studies) >= n and all(s["status"] in ("done", "failed") for s in studies):
            break
        time.sleep(0.3)
    return studies



def _wait_send(client, uid: str, status: str, timeout_s: float) -> dict | None:
    """The study's send state once it reaches ``status`` (or the last one seen at the timeout)."""
    deadline = time.monotonic() + timeout_s
    send = None
    while time.monotonic() < deadline:
        send = client.get(f"/api/studies/{uid}/dicom").json()["send"]
        if send and send["status"] == status:
            break
        time.sleep(0.3)
    return send

def test_pull_from_orthanc_and_analyse(orthanc, tmp_path):
    files = make_us_dicom(tmp_path / "pacs-in", 2, "PACS-7")
    make_us_dicom(tmp_path / "other", 1, "OTHER-1")  # not stored: must not come back
    assert c_store(files, orthanc.dicom_port, "ORTHANC") == [0, 0]

    client = PacsClient("127.0.0.1", orthanc.dicom_port, "ORTHANC", "LIVUS")
    found = client.find_studies(patient_id="PACS-7")
    assert len(found) == 1 and found[0].patient_id == "PACS-7"
    assert client.find_studies(patient_id="NOBODY") == []
    with pytest.raises(PacsError):
        client.find_studies(patient_id="*")

    svc = make_service(tmp_path / "data", pacs_host="127.0.0.1", pacs_port=orthanc.dicom_port, pacs_ae_title="ORTHANC")
    with TestClient(svc.app):
        doc = svc.client("doc")
        r = doc.post("/api/pacs/retrieve", json={"patient_id": "PACS-7"})
        assert r.status_code == 202, r.text
        uids = r.json()["studies"]
        assert len(uids) == 1
        assert svc.state.worker.wait_idle(90)
        d = doc.get(f"/api/studies/{uids[0]}").json()
        assert d["source"] == "pacs" and d["patient_id"] == "PACS-7" and d["status"] == "done", d
        assert len(d["frames"]) == 2
        assert all(f["result"]["schema"] == "livus.result/1" for f in d["frames"])
        assert doc.post("/api/pacs/retrieve", json={}).status_code == 422


def test_pull_compressed_by_c_get_and_dicomweb(orthanc):
    """JPEG 2000 and JPEG studies come back as stored (livus proposes the compressed syntaxes)."""
    _needs_dicomweb()
    sent = [compressed_dataset(J2K, "J2K-1"), compressed_dataset(JPEG, "JPEG-1")]
    assert send_datasets(sent, orthanc.dicom_port, called_ae="ORTHANC")[0] == [0, 0]

    dimse = PacsClient("127.0.0.1", orthanc.dicom_port, "ORTHANC", "LIVUS")
    web = DicomwebPacs(orthanc.dicomweb_url, *AUTH)
    for client in (dimse, web):
        for ds in sent:
            (study,) = client.find_studies(patient_id=ds.PatientID)
            assert study.study_instance_uid == ds.StudyInstanceUID
            got: list[pydicom.Dataset] = []
            assert client.get_study(study.study_instance_uid, got.append) == 1
            for g in got:
                assert g.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID, type(client).__name__
                assert (g.pixel_array == ds.pixel_array).all()

    with pytest.raises(PacsError, match="HTTP 401"):
        DicomwebPacs(orthanc.dicomweb_url, "livus", "wrong").find_studies(patient_id="J2K-1")


def test_orthanc_pushes_jpeg_and_j2k_to_livus_which_sends_sr_and_seg_back(orthanc, tmp_path):
    """Orthanc → livus listener (compressed), analysis, SR + SEG → Orthanc by C-STORE."""
    example = pydicom.dcmread(EXAMPLE_DICOM)  # the bundled simulated lesion: liver and lesion outlines → SR + SEG
    example.PatientID = "ROUND-1"
    us = [tmp_path / "example.dcm"]
    example.save_as(us[0], enforce_file_format=True)
    assert c_store(us, orthanc.dicom_port, "ORTHANC") == [0]
    compressed = [compressed_dataset(J2K, "ROUND-1"), compressed_dataset(JPEG, "ROUND-1")]
    assert send_datasets(compressed, orthanc.dicom_port, called_ae="ORTHANC")[0] == [0, 0]
    ids = orthanc.rest("GET", "/instances").json()
    assert len(ids) == 3

    svc = make_service(tmp_path / "data", dicom_port=orthanc.livus_port, dicom_calling_ae_titles=("ORTHANC@127.0.0.1",),
                       pacs_host="127.0.0.1", pacs_port=orthanc.dicom_port, send_results="dimse", send_retries=2,
                       send_retry_interval_s=0.5)
    with TestClient(svc.app):
        job = orthanc.rest("POST", "/modalities/livus/store", json={"Resources": ids, "Synchronous": True}).json()
        assert job.get("FailedInstancesCount", 0) == 0, job
        doc = svc.client("doc")
        studies = _wait_studies(svc, doc, 3)
        assert len(studies) == 3 and all(s["source"] == "dicom" for s in studies), studies
        syntaxes = set()
        for p in (svc.state.data_dir / "studies").glob("*/files/*.dcm"):
            syntaxes.add(str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID))
        assert {JPEG, J2K} <= syntaxes  # stored as received
        assert all(s["status"] == "done" for s in studies), studies  # decoded and analysed

        us_study = next(s for s in studies if s["study_instance_uid"] == pydicom.dcmread(us[0]).StudyInstanceUID)
        listing = doc.get(f"/api/studies/{us_study['uid']}/dicom").json()
        kinds = sorted(o["kind"] for o in listing["objects"])
        assert kinds == ["seg", "sr"], listing
        sr_bytes = doc.get(listing["objects"][-1]["url"])
        assert sr_bytes.status_code == 200 and sr_bytes.headers["content-type"] == "application/dicom"
        assert svc.client("res").get(f"/api/studies/{us_study['uid']}/dicom").status_code in (403, 404)

        send = _wait_send(doc, us_study["uid"], "sent", 60)
        assert send and send["status"] == "sent", send
    assert orthanc.modalities_in("ROUND-1").count("SR") >= 1
    assert "SEG" in orthanc.modalities_in("ROUND-1")
    # pulling that study again: the SR/SEG now beside the image do not fail the C-GET, and are dropped
    got: list[pydicom.Dataset] = []
    client = PacsClient("127.0.0.1", orthanc.dicom_port, "ORTHANC", "LIVUS")
    assert client.get_study(us_study["study_instance_uid"], got.append) == 1 and got[0].Modality == "US"
    with svc.state.sm() as db:
        from livus.service.storage import AuditEvent

        actions = [e.action for e in db.query(AuditEvent)]
    assert "dicom-send" in actions and "dicom-receive" in actions


def test_failed_send_is_retried_shown_and_sent_by_dicomweb_later(orthanc, tmp_path):
    """A STOW-RS with the wrong password fails, is shown as failed with the reason, and is sent
    once the setting is fixed (nothing lost)."""
    _needs_dicomweb()
    example = pydicom.dcmread(EXAMPLE_DICOM)
    example.PatientID = "STOW-1"
    files = [tmp_path / "example.dcm"]
    example.save_as(files[0], enforce_file_format=True)
    svc = make_service(tmp_path / "data", dicom_port=free_port(), send_results="dicomweb",
                       dicomweb_url=orthanc.dicomweb_url, dicomweb_username="livus", dicomweb_password="wrong",
                       send_retries=2, send_retry_interval_s=0.2)
    with TestClient(svc.app):
        assert c_store(files, svc.state.extras["dicom"].port, "LIVUS") == [0]
        doc = svc.client("doc")
        (study,) = _wait_studies(svc, doc, 1)
        send = _wait_send(doc, study["uid"], "failed", 30)
        assert send["status"] == "failed" and send["attempts"] == 2 and "HTTP 401" in send["error"], send
        r = doc.post(f"/api/studies/{study['uid']}/dicom/send")
        assert r.status_code == 502 and "HTTP 401" in r.json()["detail"]
        svc.state.cfg.dicomweb_password = AUTH[1]  # the administrator fixes the password
        r = doc.post(f"/api/studies/{study['uid']}/dicom/send")
        assert r.status_code == 200 and r.json()["status"] == "sent", r.text
    assert orthanc.modalities_in("STOW-1") == ["SEG", "SR"]  # the image went to livus only


def test_pacs_errors_are_clear_502s(orthanc, tmp_path):
    with pytest.raises(PacsError, match="calling AE title not recognised"):
        PacsClient("127.0.0.1", orthanc.dicom_port, "ORTHANC", "STRANGER").find_studies(patient_id="X")
    with pytest.raises(PacsError, match="called AE title not recognised"):
        PacsClient("127.0.0.1", orthanc.dicom_port, "NOT_ORTHANC", "LIVUS").find_studies(patient_id="X")
    svc = make_service(tmp_path / "data", pacs_host="127.0.0.1", pacs_port=orthanc.dicom_port, dicom_ae_title="STRANGER")
    with TestClient(svc.app):
        r = svc.client("doc").post("/api/pacs/retrieve", json={"patient_id": "X"})
        assert r.status_code == 502 and "DicomModalities" in r.json()["detail"], r.text


def test_pacs_unreachable_is_a_clean_error(tmp_path):
    svc = make_service(tmp_path / "data", pacs_host="127.0.0.1", pacs_port=free_port(), pacs_timeout_s=3.0)
    with TestClient(svc.app):
        r = svc.client("doc").post("/api/pacs/retrieve", json={"patient_id": "X"})
        assert r.status_code == 502 and "cannot connect" in r.json()["detail"], r.text
        web = make_service(tmp_path / "data2", dicomweb_url=f"http://127.0.0.1:{free_port()}/dicom-web",
                           pacs_retrieve="dicomweb")
    with TestClient(web.app):
        r = web.client("doc").post("/api/pacs/retrieve", json={"patient_id": "X"})
        assert r.status_code == 502 and "cannot connect" in r.json()["detail"], r.text


def test_pull_by_c_move_to_the_listener(orthanc, tmp_path):
    """The moved images reach the listener from the PACS's AE (mapped to radiology here); the
    study still belongs to the department of the hepatologist who pulled it."""
    files = make_us_dicom(tmp_path / "in", 2, "MOVE-1")
    assert c_store(files, orthanc.dicom_port, "ORTHANC") == [0, 0]
    svc = make_service(tmp_path / "data", dicom_port=orthanc.livus_port, dicom_calling_ae_titles=("ORTHANC@127.0.0.1",),
                       pacs_host="127.0.0.1", pacs_port=orthanc.dicom_port, pacs_retrieve="move",
                       dicom_departments={"ORTHANC": "radiology"})
    with TestClient(svc.app):
        users = add_department_users(svc)
        doc = users["hep"]
        r = doc.post("/api/pacs/retrieve", json={"patient_id": "MOVE-1"})
        assert r.status_code == 202 and len(r.json()["studies"]) == 1, r.text
        (study,) = _wait_studies(svc, doc, 1)
        assert study["uid"] == r.json()["studies"][0] and study["patient_id"] == "MOVE-1" and study["status"] == "done"
        assert doc.get(f"/api/studies/{study['uid']}").json()["n_frames"] == 2
        assert users["rad"].get("/api/studies").json() == []


class _FakePacs:
    """A PACS holding one study of ``files`` (C-GET-like: each image handed to ``on_dataset``)."""

    name = "FAKE@127.0.0.1:1"
    move_destination = None

    def __init__(self, files: list[Path]) -> None:
        self.datasets = [pydicom.dcmread(f) for f in files]

    def find_studies(self, patient_id: str = "", study_instance_uid: str = "") -> list[PacsStudy]:
        return [PacsStudy(str(self.datasets[0].StudyInstanceUID), patient_id, "", "", "")]

    def get_study(self, study_instance_uid: str, on_dataset) -> int:
        for ds in self.datasets:
            on_dataset(ds)
        return len(self.datasets)


@pytest.mark.parametrize("pacs_department", [None, "radiology"])
def test_pulled_studies_belong_to_the_pullers_department_or_the_configured_one(tmp_path, pacs_department):
    svc = make_service(tmp_path / "data", pacs_department=pacs_department)
    with TestClient(svc.app):
        users = add_department_users(svc)
        with svc.state.sm() as db:
            hep_user = db.query(User).filter(User.username == "hep").one()
        (uid,) = import_retrieved(svc.state, _FakePacs(make_us_dicom(tmp_path / "in", 1, "PULL-1")), "PULL-1", "", hep_user)
        assert svc.state.worker.wait_idle(90)
        owner, other = ("hep", "rad") if pacs_department is None else ("rad", "hep")
        assert [s["uid"] for s in users[owner].get("/api/studies").json()] == [uid]
        assert users[other].get("/api/studies").json() == []
        assert users[other].get(f"/api/studies/{uid}").status_code == 404
        assert svc.client("doc").get("/api/studies").json() == []  # users without a department do not see it


def test_a_silent_pacs_times_out_with_a_clear_error():
    """A server that takes the connection and never answers: a PacsError after the timeout."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(PacsError, match="no answer within 1 s"):
            PacsClient("127.0.0.1", port, timeout_s=1.0).find_studies(patient_id="X")
        assert time.monotonic() - started < 10
