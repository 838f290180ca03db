"""The service end to end through its API: login, upload, analysis, results, roles, audit."""

from __future__ import annotations

import numpy as np
import pytest

from livus.service.storage import FrameRecord

from .conftest import png_bytes, ultrasound_like, upload, wait_done

PROTECTED = [
    ("GET", "/api/studies"), ("POST", "/api/studies"), ("GET", "/api/studies/abc"), ("GET", "/api/users"),
    ("POST", "/api/users"), ("GET", "/api/models"), ("GET", "/api/monitor"), ("GET", "/api/audit"),
    ("GET", "/api/frames/1/image.png"), ("GET", "/api/export/results.json"), ("POST", "/api/outcomes"),
    ("GET", "/api/session"), ("POST", "/api/models/detector/rollback"), ("GET", "/api/studies/x/report.html"),
]


def test_health_and_page_need_no_login(service):
    c = service.client()
    assert c.get("/healthz").json() == {"status": "ok"}
    page = c.get("/")
    assert page.status_code == 200 and "livus" in page.text
    assert c.get("/static/app.js").status_code == 200


@pytest.mark.parametrize("method,path", PROTECTED)
def test_api_answers_401_without_login(service, method, path):
    r = service.client().request(method, path)
    assert r.status_code == 401


def test_upload_analyse_and_view(service, doc):
    img = ultrasound_like()
    study = upload(doc, [("liver one.png", png_bytes(img))], description="RUQ scan", patient_id="P-1")
    assert study["status"] == "queued"
    d = wait_done(service, doc, study["uid"])
    assert d["status"] == "done", d["error"]
    assert len(d["frames"]) == 1
    fr = d["frames"][0]
    res = fr["result"]
    assert res["schema"] == "livus.result/1"
    assert res["image_size_px"] == [img.shape[1], img.shape[0]]
    assert res["source"] == "liver one.png"  # the uploaded name, never a server path
    assert isinstance(res["lesions"], list)
    assert fr["model_version"] == res["model"]["version"]
    assert d["files"][0]["name"] == "liver one.png"
    png = doc.get(fr["image_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    if fr["overlay_url"]:
        assert doc.get(fr["overlay_url"]).status_code == 200
    listed = doc.get("/api/studies").json()
    assert listed[0]["uid"] == study["uid"] and listed[0]["n_frames"] == 1
    for rep in d["reports"]:
        r = doc.get(rep["url"])
        assert r.status_code == 200 and len(r.content) > 100
    # the result row records the model version that produced it
    with service.state.sm() as db:
        row = db.query(FrameRecord).one()
        assert row.model_version == fr["model_version"]


def test_researcher_sees_only_deidentified_data(service, doc, researcher):
    study = upload(doc, [("smith_john.png", png_bytes(ultrasound_like()))], description="Mr Smith", patient_id="P-77",
                   patient_name="SMITH^JOHN")
    wait_done(service, doc, study["uid"])
    assert researcher.post("/api/studies", files=[("files", ("a.png", b"x"))]).status_code == 403
    d = researcher.get(f"/api/studies/{study['uid']}").json()
    text = str(d)
    for secret in ("P-77", "SMITH", "Mr Smith", "smith_john"):
        assert secret not in text
    assert d["deidentified"] is True and d["patient_id"].startswith("patient-")
    assert d["reports"] == [] and d["case"] is None
    assert researcher.get(f"/api/studies/{study['uid']}/report.html").status_code == 403
    # burned-in text outside the fan is blacked out in the researcher's image
    import cv2

    img = cv2.imdecode(np.frombuffer(researcher.get(d["frames"][0]["image_url"]).content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img[:18, :80].max() == 0
    export = researcher.get("/api/export/results.json")
    assert export.status_code == 200 and "P-77" not in export.text and "smith_john" not in export.text


def test_audit_log_records_views_and_exports(service, doc, admin):
    study = upload(doc, [("a.png", png_bytes(ultrasound_like()))])
    d = wait_done(service, doc, study["uid"])
    for rep in d["reports"]:
        doc.get(rep["url"])
    events = admin.get("/api/audit").json()
    actions = {(e["user"], e["action"]) for e in events}
    assert ("doc", "upload") in actions and ("doc", "view") in actions and ("doc", "login") in actions
    if d["reports"]:
        assert ("doc", "export") in actions
    assert doc.get("/api/audit").status_code == 403


def test_admin_manages_users_and_language(service, admin):
    r = admin.post("/api/users", json={"username": "nurse", "password": "short", "role": "physician"})
    assert r.status_code == 422
    r = admin.post("/api/users", json={"username": "doc2", "password": "a-long-password", "role": "physician"})
    assert r.status_code == 201
    assert admin.post("/api/users", json={"username": "doc2", "password": "a-long-password", "role": "physician"}).status_code == 422
    c = service.client()
    r = c.post("/api/login", json={"username": "doc2", "password": "a-long-password"})
    assert r.status_code == 200
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert c.put("/api/me/language", json={"language": "en"}).json()["language"] == "en"
    assert c.put("/api/me/language", json={"language": "xx"}).status_code == 422
    assert c.get("/api/session").json()["user"]["language"] == "en"


def test_logout_ends_the_session(service, doc):
    assert doc.get("/api/session").status_code == 200
    assert doc.post("/api/logout").status_code == 200
    assert doc.get("/api/session").status_code == 401


def test_bearer_token_for_scripts(service):
    c = service.client()
    r = c.post("/api/login", json={"username": "doc", "password": "doctor-pass-123", "want_token": True})
    token = r.json()["token"]
    bare = service.client()
    assert bare.get("/api/studies", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # bearer requests need no CSRF token (no cookie is involved)
    r = bare.post("/api/studies", headers={"Authorization": f"Bearer {token}"},
                  files=[("files", ("a.png", png_bytes(ultrasound_like())))])
    assert r.status_code == 202
    service.state.worker.wait_idle(60)


def test_clip_upload_is_analysed(service, doc, tmp_path):
    import cv2

    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240), False)
    for i in range(12):
        w.write(np.roll(ultrasound_like(320, 240), 2 * i, axis=1))
    w.release()
    d = wait_done(service, doc, upload(doc, [("clip.avi", clip.read_bytes())])["uid"])
    assert d["status"] == "done", d["error"]
    assert len(d["frames"]) >= 1
    assert {f["file"] for f in d["frames"]} == {"clip.avi"}
    assert all(f["result"]["image_size_px"] == [320, 240] for f in d["frames"])
