"""The C-STORE listener: a pynetdicom client on 127.0.0.1 pushes a study; livus analyses it."""

from __future__ import annotations

import time

import pydicom
from fastapi.testclient import TestClient
from pynetdicom import AE
from pynetdicom.sop_class import UltrasoundImageStorage, Verification

from .conftest import add_department_users, make_service
from .dicom_helpers import c_store, free_port, make_us_dicom


def test_c_store_push_is_stored_and_analysed(tmp_path):
    port = free_port()
    svc = make_service(tmp_path / "data", dicom_port=port, dicom_ae_title="LIVUS")
    with TestClient(svc.app):
        files = make_us_dicom(tmp_path / "in", 2, "PUSH-1")
        ae = AE(ae_title="TESTSCU")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="LIVUS")
        assert assoc.is_established and assoc.send_c_echo().Status == 0
        assoc.release()
        assert c_store(files, port, "LIVUS") == [0, 0]
        doc = svc.client("doc")
        deadline = time.monotonic() + 60
        studies = []
        while time.monotonic() < deadline:
            studies = doc.get("/api/studies").json()
            if studies and studies[0]["status"] in ("done", "failed"):
                break
            time.sleep(0.2)
        assert len(studies) == 1, studies
        s = studies[0]
        assert s["source"] == "dicom" and s["patient_id"] == "PUSH-1" and s["status"] == "done", s
        d = doc.get(f"/api/studies/{s['uid']}").json()
        assert len(d["frames"]) == 2
        assert d["study_instance_uid"] == pydicom.dcmread(files[0]).StudyInstanceUID
        for fr in d["frames"]:
            assert fr["result"]["pixel_spacing_mm"] == [0.3, 0.3]  # from the Sequence of Ultrasound Regions
            assert "/" not in fr["file"]
        events = svc.client("admin").get("/api/audit", params={"action": "dicom-receive"}).json()
        assert events and "TESTSCU" in events[0]["detail"]


def test_studies_from_a_mapped_calling_ae_belong_to_its_department(tmp_path):
    port = free_port()
    svc = make_service(tmp_path / "data", dicom_port=port,
                       dicom_departments={"HEP_US": "hepatology", "RAD_US@127.0.0.1": "radiology", "RAD_US": "hepatology"})
    with TestClient(svc.app):
        users = add_department_users(svc)
        for calling_ae, patient in (("HEP_US", "HEP-1"), ("RAD_US", "RAD-1"), ("OTHER_US", "OTHER-1")):
            assert c_store(make_us_dicom(tmp_path / patient, 1, patient), port, "LIVUS", calling_ae=calling_ae) == [0]
        admin = svc.client("admin")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            studies = admin.get("/api/studies").json()
            if len(studies) == 3 and all(s["status"] in ("done", "failed") for s in studies):
                break
            time.sleep(0.3)

        def seen(client) -> list[str]:
            return sorted(s["patient_id"] for s in client.get("/api/studies").json())

        assert seen(admin) == ["HEP-1", "OTHER-1", "RAD-1"]
        assert seen(users["hep"]) == ["HEP-1"]
        assert seen(users["rad"]) == ["RAD-1"]  # "AE@address" wins over the AE alone
        assert seen(svc.client("doc")) == ["OTHER-1"]  # a sender not mapped: no department
        hep_uid = next(s["uid"] for s in admin.get("/api/studies").json() if s["patient_id"] == "HEP-1")
        assert users["hep"].get(f"/api/studies/{hep_uid}").status_code == 200
        assert users["rad"].get(f"/api/studies/{hep_uid}").status_code == 404
        received = {e["target"]: e["detail"] for e in admin.get("/api/audit", params={"action": "dicom-receive"}).json()}
        assert received[hep_uid] == "from HEP_US; department hepatology"


def test_c_store_refuses_data_set_without_uids(tmp_path):
    port = free_port()
    svc = make_service(tmp_path / "data", dicom_port=port)
    with TestClient(svc.app):
        ds = pydicom.dcmread(make_us_dicom(tmp_path / "in", 1, "BAD")[0])
        del ds.StudyInstanceUID
        ae = AE(ae_title="TESTSCU")
        ae.add_requested_context(UltrasoundImageStorage)
        assoc = ae.associate("127.0.0.1", port, ae_title="LIVUS")
        status = assoc.send_c_store(ds)
        assoc.release()
        assert status.Status == 0xC000
        assert svc.client("doc").get("/api/studies").json() == []


# ----------------------------------------------------------------------------- listener alone
# (no analysis: a fake worker records what would be queued)

import ssl  # noqa: E402
import subprocess  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from livus.io.readers import read_frames  # noqa: E402
from livus.service.dicom_listener import DicomListener, ListenerOptions  # noqa: E402
from livus.service.storage import AuditEvent, Study, StudyFile, database_url, make_engine, make_sessionmaker  # noqa: E402

from .dicom_helpers import COMPRESSED_TEST_FILES, compressed_dataset, compressed_test_file, send_datasets  # noqa: E402


@dataclass
class _Worker:
    submitted: list[int] = field(default_factory=list)

    def submit(self, sid: int) -> None:
        self.submitted.append(sid)


@dataclass
class _State:
    data_dir: Path
    sm: sessionmaker
    worker: _Worker


@pytest.fixture()
def listener_factory(tmp_path):
    started = []

    def start(**opts):
        data = tmp_path / "data"
        (data / "studies").mkdir(parents=True, exist_ok=True)
        state = _State(data, make_sessionmaker(make_engine(database_url(data, None))), _Worker())
        lst = DicomListener(state, ListenerOptions(**{"port": 0, **opts}))
        lst.start()
        started.append(lst)
        return lst, state

    yield start
    for lst in started:
        lst.stop()


def _audit(state, action="dicom-refused", at_least: int = 1):
    """Audit rows of ``action`` (waits up to 5 s for ``at_least``: refusals are written just after
    the answer goes out)."""
    deadline = time.monotonic() + 5
    while True:
        with state.sm() as db:
            rows = [(e.target, e.detail, e.client) for e in db.query(AuditEvent).filter(AuditEvent.action == action)]
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.mark.parametrize("syntax", sorted(COMPRESSED_TEST_FILES))
def test_compressed_transfer_syntaxes_are_accepted_and_decoded(listener_factory, syntax):
    """Each compressed syntax scanners/PACS send: accepted as is, stored as received, decoded."""
    lst, state = listener_factory()
    statuses, _ = send_datasets([compressed_dataset(syntax)], lst.port)
    assert statuses == [0], f"{syntax} refused"
    time.sleep(0.3)  # association end → queued
    with state.sm() as db:
        stored = db.query(StudyFile).one()
    path = state.data_dir / stored.stored_path
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    frames = list(read_frames(path))
    expected = pydicom.dcmread(compressed_test_file(syntax)).pixel_array
    assert frames[0].pixels.shape == expected.shape[:2]
    assert frames[0].pixels.std() > 0  # decoded image content, not a blank frame
    assert state.worker.submitted, "study not queued"


def test_unknown_calling_ae_and_wrong_called_ae_are_refused_and_audited(listener_factory, tmp_path):
    lst, state = listener_factory(calling_ae_titles=("SCANNER1", "PACS@127.0.0.1", "OTHER@10.0.0.9"))
    ds = pydicom.dcmread(make_us_dicom(tmp_path / "in", 1, "P-1")[0])
    for calling, called in (("EVIL_AE", "LIVUS"), ("SCANNER1", "WRONG"), ("OTHER", "LIVUS")):
        statuses, assoc = send_datasets([ds], lst.port, called_ae=called, calling_ae=calling)
        # refused (the audit rows below say why); a loaded machine may see the server's close before
        # the A-ASSOCIATE-RJ and report an abort instead: never an established association
        assert statuses is None and not assoc.is_established and (assoc.is_rejected or assoc.is_aborted), (calling, called)
    events = _audit(state, at_least=3)
    assert [e[0] for e in events] == ["EVIL_AE", "SCANNER1", "OTHER"]
    assert "calling AE title not allowed" in events[0][1] and "called AE title not recognised" in events[1][1]
    assert events[0][2] == "127.0.0.1"
    for calling in ("SCANNER1", "PACS"):
        assert send_datasets([ds], lst.port, calling_ae=calling)[0] == [0]
    with state.sm() as db:
        assert db.query(Study).count() == 2  # nothing stored from the refused senders
        assert "INJECTED" not in str(db.query(Study.patient_name).all())


def test_association_limit_and_object_size(listener_factory, tmp_path):
    lst, state = listener_factory(max_associations=1, max_object_bytes=20_000)
    small = compressed_dataset("1.2.840.10008.1.2.4.50")  # ~6 KB
    big = pydicom.dcmread(make_us_dicom(tmp_path / "in", 1, "BIG")[0])  # 256 x 192 uncompressed ~50 KB
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    first = ae.associate("127.0.0.1", lst.port, ae_title="LIVUS")
    assert first.is_established
    second = ae.associate("127.0.0.1", lst.port, ae_title="LIVUS")
    assert second.is_rejected
    first.release()
    time.sleep(0.3)
    statuses, _ = send_datasets([small, big], lst.port)
    assert statuses == [0, 0xA700]
    details = [e[1] for e in _audit(state, at_least=2)]
    assert any("too many associations (limit 1)" in d for d in details)
    assert any("over the limit of 20000" in d for d in details)
    with state.sm() as db:
        assert db.query(StudyFile).count() == 1


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_dicom_over_tls_with_client_certificates(listener_factory, tmp_path):
    if subprocess.run(["which", "openssl"], capture_output=True).returncode:
        pytest.skip("openssl command not installed: cannot make test certificates")
    server_cert, server_key = _self_signed(tmp_path, "livus")
    client_cert, client_key = _self_signed(tmp_path, "scanner")
    lst, state = listener_factory(tls_cert=str(server_cert), tls_key=str(server_key), tls_ca=str(client_cert))
    ds = pydicom.dcmread(make_us_dicom(tmp_path / "in", 1, "TLS-1")[0])

    ctx = ssl.create_default_context(cafile=str(server_cert))
    ctx.load_cert_chain(str(client_cert), str(client_key))
    assert send_datasets([ds], lst.port, tls=(ctx, "127.0.0.1"))[0] == [0]
    plain_statuses, plain = send_datasets([ds], lst.port)  # no TLS: no association
    assert plain_statuses is None and not plain.is_established
    anonymous = ssl.create_default_context(cafile=str(server_cert))  # TLS without a client certificate
    assert send_datasets([ds], lst.port, tls=(anonymous, "127.0.0.1"))[0] is None
    with state.sm() as db:
        assert db.query(StudyFile).count() == 1


def test_listener_settings_are_checked():
    with pytest.raises(ValueError, match="dicom_calling_ae_titles"):
        ListenerOptions(host="0.0.0.0").check()
    ListenerOptions(host="0.0.0.0", calling_ae_titles=("SCANNER1",)).check()
    with pytest.raises(ValueError, match="go together"):
        ListenerOptions(tls_cert="a.pem").check()
    assert ListenerOptions(calling_ae_titles=("A@10.0.0.1",)).calling_allowed("A", "10.0.0.1")
    assert not ListenerOptions(calling_ae_titles=("A@10.0.0.1",)).calling_allowed("A", "10.0.0.2")
    mapped = ListenerOptions(departments={"A": "hepatology", "A@10.0.0.1": "radiology"}, default_department="general")
    assert mapped.department_for("A", "10.0.0.1") == "radiology" and mapped.department_for("A", "10.0.0.2") == "hepatology"
    assert mapped.department_for("B", "10.0.0.1") == "general"
    with pytest.raises(ValueError, match="calling AE"):
        ListenerOptions(departments={"@10.0.0.1": "x"}).check()
    with pytest.raises(ValueError, match="printable"):
        ListenerOptions(departments={"A": "x" * 65}).check()


def test_an_oversized_data_set_is_cut_off_while_it_streams(listener_factory, tmp_path):
    """A data set far over the limit is not buffered whole: the connection is closed once more
    than the limit (+1 MiB) has come in one message."""
    import numpy as np

    lst, state = listener_factory(max_object_bytes=100_000)
    ds = pydicom.dcmread(make_us_dicom(tmp_path / "in", 1, "HUGE")[0])
    big = np.random.default_rng(0).integers(0, 255, (2000, 2000), dtype=np.uint8)  # 4 MB of pixels
    ds.Rows, ds.Columns = big.shape
    ds.PixelData = big.tobytes()
    statuses, assoc = send_datasets([ds], lst.port)
    assert statuses in ([-1], None) or not assoc.is_released  # aborted, no success status
    time.sleep(0.3)
    with state.sm() as db:
        assert db.query(StudyFile).count() == 0
    assert any("connection closed" in d for _, d, _ in _audit(state))
