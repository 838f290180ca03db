"""Patient identity survives an upload: from the DICOM header (or the form for plain images)
to the study list, the study page, the HTML/PDF report and the DICOM SR; wrong-patient
uploads are refused."""

from __future__ import annotations

import io

import pydicom
from pypdf import PdfReader

from .conftest import png_bytes, ultrasound_like, upload, wait_done
from .dicom_helpers import make_us_dicom


def _pdf_text(data: bytes) -> str:
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).replace("\x00", "")


def test_dicom_upload_keeps_patient_identity_on_every_surface(service, doc, tmp_path):
    path = make_us_dicom(tmp_path / "in", 1, "MRN-4711")[0]
    study = upload(doc, [("liver_scan_ruq.dcm", path.read_bytes())])  # no form fields: the header names the patient
    assert study["patient_id"] == "MRN-4711" and study["patient_name"] == "TEST^PATIENT"
    d = wait_done(service, doc, study["uid"])
    assert d["status"] == "done", d["error"]
    assert d["study_instance_uid"] == pydicom.dcmread(path).StudyInstanceUID
    listed = doc.get("/api/studies").json()
    assert listed[0]["patient_id"] == "MRN-4711"
    assert d["files"][0]["name"] == "liver_scan_ruq.dcm"
    assert d["frames"][0]["file"] == "liver_scan_ruq.dcm" and d["frames"][0]["result"]["source"] == "liver_scan_ruq.dcm"
    kinds = {r["kind"]: r["url"] for r in d["reports"]}
    assert {"html", "pdf", "sr"} <= set(kinds), kinds
    html = doc.get(kinds["html"]).text
    assert "MRN-4711" in html and "liver_scan_ruq.dcm" in html and "000.dcm" not in html
    assert "MRN-4711" in _pdf_text(doc.get(kinds["pdf"]).content)
    sr = pydicom.dcmread(io.BytesIO(doc.get(kinds["sr"]).content))
    assert sr.PatientID == "MRN-4711"
    assert d["case"]["cases"][0]["patient"]["patient_id"] == "MRN-4711"
    data_dir = str(service.state.data_dir)
    for text in (str(d), str(listed), doc.get("/api/models").text, doc.get("/api/monitor").text,
                 doc.get("/api/export/results.json").text):
        assert data_dir not in text  # no server paths in answers


def test_plain_image_takes_identity_from_the_form(service, doc):
    study = upload(doc, [("still.png", png_bytes(ultrasound_like()))], patient_id="P-99", patient_name="LI^NA")
    d = wait_done(service, doc, study["uid"])
    assert d["patient_id"] == "P-99" and d["patient_name"] == "LI^NA"
    html = doc.get(next(r["url"] for r in d["reports"] if r["kind"] == "html")).text
    assert "P-99" in html and "LI^NA" in html


def test_wrong_patient_uploads_are_refused(service, doc, tmp_path):
    a = make_us_dicom(tmp_path / "a", 1, "MRN-1")[0].read_bytes()
    b = make_us_dicom(tmp_path / "b", 1, "MRN-2")[0].read_bytes()
    r = doc.post("/api/studies", files=[("files", ("a.dcm", a)), ("files", ("b.dcm", b))])
    assert r.status_code == 422 and "different patients" in r.json()["detail"]
    r = doc.post("/api/studies", files=[("files", ("a.dcm", a))], data={"patient_id": "MRN-3"})
    assert r.status_code == 422 and "MRN-1" in r.json()["detail"]
    assert doc.get("/api/studies").json() == []  # nothing stored
    assert not list((service.state.data_dir / "incoming").glob("*"))


def test_same_file_names_stay_apart(service, doc):
    img = png_bytes(ultrasound_like())
    study = upload(doc, [("scan.png", img), ("scan.png", png_bytes(ultrasound_like(seed=5)))], patient_id="P-1")
    d = wait_done(service, doc, study["uid"])
    assert [f["name"] for f in d["files"]] == ["scan.png", "scan.png"]
    assert len(d["frames"]) == 2 and all(fr["overlay_url"] for fr in d["frames"])
