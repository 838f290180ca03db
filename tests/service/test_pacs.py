"""Pull from a real PACS: Orthanc (Debian package) on 127.0.0.1, remote access disabled, holding
test DICOM; livus finds (C-FIND), retrieves (C-GET) and analyses the study."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from livus.service.pacs import PacsClient, PacsError

from .conftest import make_service
from .dicom_helpers import c_store, free_port, make_us_dicom
from .system_packages import ensure_debian_package

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def orthanc_binary() -> str:
    path = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").is_file() else None)
    path = path or ensure_debian_package("Orthanc", "orthanc")
    if path is None and Path("/usr/sbin/Orthanc").is_file():
        path = "/usr/sbin/Orthanc"
    if path is None:
        pytest.skip("orthanc could not be installed (Debian package 'orthanc'): PACS pull not tested")
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


@pytest.fixture()
def orthanc(orthanc_binary: str, tmp_path: Path):
    dicom_port, http_port = free_port(), free_port()
    store = tmp_path / "orthanc-db"
    config = {
        "Name": "livus-test", "StorageDirectory": str(store), "IndexDirectory": str(store),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [],
        "DicomCheckCalledAet": True, "DicomCheckModalityHost": True,
        "DicomModalities": {"livus": ["LIVUS", "127.0.0.1", 1], "test": ["TESTSCU", "127.0.0.1", 1]},
        "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
        "ConcurrentJobs": 1, "SaveJobs": False,
    }
    cfg_path = tmp_path / "orthanc.json"
    cfg_path.write_text(json.dumps(config))
    log = open(tmp_path / "orthanc.log", "w")
    proc = subprocess.Popen([orthanc_binary, str(cfg_path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if _echo_ok(dicom_port):
                break
            time.sleep(0.3)
        else:
            pytest.skip(f"orthanc did not start: {(tmp_path / 'orthanc.log').read_text()[-500:]}")
        yield dicom_port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_pull_from_orthanc_and_analyse(orthanc, tmp_path):
    files = make_us_dicom(tmp_path / "pacs-in", 2, "PACS-7")
    make_us_dicom(tmp_path / "other", 1, "OTHER-1")  # not stored: must not come back
    assert c_store(files, orthanc, "ORTHANC") == [0, 0]

    client = PacsClient("127.0.0.1", orthanc, "ORTHANC", "LIVUS")
    found = client.find_studies(patient_id="PACS-7")
    assert len(found) == 1 and found[0].patient_id == "PACS-7"
    assert client.find_studies(patient_id="NOBODY") == []
    with pytest.raises(PacsError):
        client.find_studies(patient_id="*")
    with pytest.raises(PacsError):
        PacsClient("127.0.0.1", orthanc, "ORTHANC", "STRANGER").find_studies(patient_id="PACS-7")  # unknown AE

    svc = make_service(tmp_path / "data", pacs_host="127.0.0.1", pacs_port=orthanc, pacs_ae_title="ORTHANC")
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


def test_pacs_unreachable_is_a_clean_error(tmp_path):
    svc = make_service(tmp_path / "data", pacs_host="127.0.0.1", pacs_port=free_port())
    with TestClient(svc.app):
        r = svc.client("doc").post("/api/pacs/retrieve", json={"patient_id": "X"})
        assert r.status_code == 502 and "cannot associate" in r.json()["detail"]
