"""The C-STORE listener: a pynetdicom client on 127.0.0.1 pushes a study; livus analyses it."""

from __future__ import annotations

import time

import pydicom
from fastapi.testclient import TestClient
from pynetdicom import AE
from pynetdicom.sop_class import UltrasoundImageStorage, Verification

from .conftest import make_service
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
