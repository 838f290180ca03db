"""Bad input and attacks: each refused or handled cleanly, nothing lost, never a 500."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from livus.service.storage import Study, StudyFile, User

from .conftest import PASSWORDS, make_service, png_bomb, png_bytes, ultrasound_like, upload, wait_done

SQL_INJECTIONS = [
    "' OR '1'='1", "admin'--", "x'); DROP TABLE users;--", "\" OR 1=1 --", "1; DELETE FROM studies",
    "%' UNION SELECT password_hash FROM users --",
]


def test_wrong_password_and_unknown_user_get_the_same_answer(service):
    c = service.client()
    a = c.post("/api/login", json={"username": "doc", "password": "wrong-password"})
    b = c.post("/api/login", json={"username": "nobody", "password": "wrong-password"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
    assert "livus_session" not in c.cookies


def _login(c, user: str, password: str, address: str):
    return c.post("/api/login", json={"username": user, "password": password}, headers={"X-Forwarded-For": address})


def test_login_back_off_per_address_never_locks_the_account_out(tmp_path):
    svc = make_service(tmp_path / "d", trusted_proxies=("testclient",), login_rate_limit=1000)
    c = svc.client()
    attacker, owner = "203.0.113.9", "198.51.100.7"
    known = [_login(c, "admin", "bad-password-x", attacker) for _ in range(svc.cfg.lockout_failures + 2)]
    unknown = [_login(c, "no-such-user", "bad-password-x", attacker) for _ in range(svc.cfg.lockout_failures + 2)]
    # the same answers for a real and an unknown name, blocked or not: names cannot be found out
    assert [(r.status_code, r.json()) for r in known] == [(r.status_code, r.json()) for r in unknown]
    assert {r.status_code for r in known} == {401}
    assert _login(c, "admin", PASSWORDS["admin"], attacker).status_code == 401  # the attacker's address waits
    assert _login(c, "admin", PASSWORDS["admin"], owner).status_code == 200  # the administrator is never locked out
    admin = svc.client()
    assert _login(admin, "admin", PASSWORDS["admin"], owner).status_code == 200
    admin.headers["X-CSRF-Token"] = admin.get("/api/session").json()["csrf_token"]
    assert next(u for u in admin.get("/api/users").json() if u["username"] == "admin")["locked"] is True
    assert admin.post("/api/users/admin/unlock").status_code == 200
    assert _login(c, "admin", PASSWORDS["admin"], attacker).status_code == 200
    blocked = svc.client("admin").get("/api/audit", params={"action": "login-blocked"}).json()
    assert blocked and blocked[0]["client"] == attacker


def test_login_back_off_survives_a_restart_and_is_shared(tmp_path):
    """The back-off lives in the database: a restarted service (a new app on the same data
    directory), like a second worker process beside the first, keeps refusing the address."""
    from fastapi.testclient import TestClient

    from livus.service.app import create_app

    svc = make_service(tmp_path / "d", trusted_proxies=("testclient",), login_rate_limit=1000)
    attacker, owner = "203.0.113.9", "198.51.100.7"
    first = svc.client()
    for _ in range(svc.cfg.lockout_failures):
        assert _login(first, "doc", "bad-password-x", attacker).status_code == 401
    assert _login(first, "doc", PASSWORDS["doc"], attacker).status_code == 401
    restarted = TestClient(create_app(svc.cfg))
    assert _login(restarted, "doc", PASSWORDS["doc"], attacker).status_code == 401  # still waiting
    assert _login(restarted, "doc", PASSWORDS["doc"], owner).status_code == 200  # never locked out elsewhere
    assert svc.client("admin").post("/api/users/doc/unlock").status_code == 200  # lifted by the other process
    assert _login(restarted, "doc", PASSWORDS["doc"], attacker).status_code == 200


def test_password_spraying_blocks_the_address(tmp_path):
    svc = make_service(tmp_path / "d", trusted_proxies=("testclient",), login_rate_limit=1000, lockout_ip_failures=6)
    c = svc.client()
    for i in range(6):
        assert _login(c, f"user{i}", "guess-123456", "203.0.113.5").status_code == 401
    assert _login(c, "doc", PASSWORDS["doc"], "203.0.113.5").status_code == 401
    assert _login(c, "doc", PASSWORDS["doc"], "203.0.113.6").status_code == 200


def test_forwarded_for_believed_only_from_trusted_proxies(tmp_path):
    svc = make_service(tmp_path / "d")  # no trusted proxy: the header is ignored
    c = svc.client()
    assert _login(c, "doc", PASSWORDS["doc"], "203.0.113.77").status_code == 200
    events = svc.client("admin").get("/api/audit", params={"action": "login", "user": "doc"}).json()
    assert events[-1]["client"] == "testclient"
    from livus.service.auth import forwarded_client

    assert forwarded_client("10.0.0.2", "1.2.3.4, 5.6.7.8", ("10.0.0.2",)) == "5.6.7.8"  # the proxy's own entry
    assert forwarded_client("10.0.0.3", "1.2.3.4", ("10.0.0.2",)) == "10.0.0.3"


def test_login_rate_limit_per_client(tmp_path):
    svc = make_service(tmp_path / "d", login_rate_limit=3, login_rate_window_s=60)
    c = svc.client()
    codes = [c.post("/api/login", json={"username": "x", "password": "y"}).status_code for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]


def test_missing_and_forged_sessions_are_refused(service, doc):
    c = service.client()
    c.cookies.set("livus_session", "forged-token-value")
    assert c.get("/api/studies").status_code == 401
    assert c.get("/api/studies", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert c.get("/api/studies", headers={"Authorization": "Bearer " + "x" * 5000}).status_code == 401
    # the session cookie is HttpOnly and SameSite
    r = service.client().post("/api/login", json={"username": "doc", "password": PASSWORDS["doc"]})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_secure_cookie_option(tmp_path):
    svc = make_service(tmp_path / "d", secure_cookies=True)
    r = svc.client().post("/api/login", json={"username": "doc", "password": PASSWORDS["doc"]})
    assert "secure" in r.headers["set-cookie"].lower()
    assert "strict-transport-security" in r.headers


def test_csrf_token_required_for_cookie_writes(service, doc):
    no_csrf = service.client()
    r = no_csrf.post("/api/login", json={"username": "doc", "password": PASSWORDS["doc"]})
    assert r.status_code == 200
    files = [("files", ("a.png", png_bytes(ultrasound_like())))]
    assert no_csrf.post("/api/studies", files=files).status_code == 403
    assert no_csrf.post("/api/studies", files=files, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert no_csrf.put("/api/me/language", json={"language": "en"}).status_code == 403
    assert no_csrf.get("/api/studies").status_code == 200  # reads need no token


def test_roles_are_enforced(service, doc, researcher):
    assert doc.get("/api/users").status_code == 403
    assert doc.post("/api/users", json={"username": "evil", "password": "0123456789", "role": "admin"}).status_code == 403
    assert doc.post("/api/models/detector/rollback").status_code == 403
    assert researcher.post("/api/outcomes", json={"frame_id": 1, "lesion_id": 1, "malignant": True,
                                                   "method": "pathology"}).status_code == 403


TRAVERSAL_NAMES = ["../../../etc/passwd", "..\\..\\windows\\system32\\a.png", "/etc/shadow", "a/../../b.png",
                   "\x00evil.png", "..", ".bashrc", "x" * 1000 + ".png", "名字.png"]


def test_path_traversal_in_file_names(service, doc):
    img = png_bytes(ultrasound_like(seed=3))
    study = upload(doc, [(name, img) for name in TRAVERSAL_NAMES])
    d = wait_done(service, doc, study["uid"])
    data_dir = Path(service.cfg.data_dir).resolve()
    folder = data_dir / "studies" / study["uid"] / "files"
    with service.state.sm() as db:
        sid = db.query(Study).filter(Study.uid == study["uid"]).one().id
        files = db.query(StudyFile).filter(StudyFile.study_id == sid).all()
        assert len(files) == len(TRAVERSAL_NAMES)
        for f in files:
            stored = (data_dir / f.stored_path).resolve()
            assert stored.parent.parent == folder and stored.is_file()  # files/<nnn>/<cleaned name>
            assert re.fullmatch(r"[\w-]+\.(png|bin)", stored.name), stored.name
            assert "/" not in f.original_name and "\\" not in f.original_name and "\x00" not in f.original_name
            assert len(f.original_name) <= 120
    assert sorted(p.name for p in data_dir.rglob("*") if p.is_file() and p.parent == data_dir) == sorted(
        p.name for p in data_dir.iterdir() if p.is_file())  # nothing written next to the database
    assert not (data_dir.parent / "etc").exists() and not (data_dir.parent / "b.png").exists()
    assert d["status"] == "done"


def test_path_traversal_in_urls(service, doc):
    for path in ("/api/studies/..%2F..%2Fetc%2Fpasswd", "/api/studies/../../etc/passwd", "/static/../app.py",
                 "/static/..%2Fapp.py", "/api/frames/../../1/image.png", "/api/studies/x/report.../../livus.db"):
        r = doc.get(path)
        assert r.status_code in (400, 404, 405, 422), (path, r.status_code)
        assert b"DeclarativeBase" not in r.content and b"SQLite" not in r.content


def test_oversized_upload_is_refused(service, doc):
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * int(2.5 * 1024 * 1024)
    r = doc.post("/api/studies", files=[("files", ("big.png", big))])
    assert r.status_code == 413
    assert doc.get("/api/studies").json() == []  # nothing half-stored


def test_oversized_chunked_upload_is_refused(service, doc):
    def chunks():
        for _ in range(30):
            yield b"x" * (100 * 1024)

    r = doc.post("/api/studies", content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413


MALFORMED = [
    ("empty.png", b""),
    ("truncated.png", png_bytes(ultrasound_like())[:200]),
    ("text.png", b"hello, this is not an image"),
    ("bad.dcm", b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00junk" + b"\xff" * 50),
    ("noise.jpg", b"\xff\xd8\xff" + bytes(range(256)) * 4),
    ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100),
]


@pytest.mark.parametrize("name,data,limit", [
    ("bomb.png", png_bomb(), {}),
    ("big.png", png_bytes(ultrasound_like(640, 480)), {"max_frame_pixels": 640 * 480 - 1}),
])
def test_too_many_pixels_refused_from_the_header(tmp_path, name, data, limit):
    svc = make_service(tmp_path / "d", **limit)
    r = svc.client("doc").post("/api/studies", files=[("files", (name, data))])
    assert r.status_code == 413 and name in r.json()["detail"], r.text
    assert svc.client("doc").get("/api/studies").json() == []


def test_too_many_frames_refused_from_the_dicom_header(tmp_path):
    from livus.io.dicom_write import write_us_dicom

    path = write_us_dicom(tmp_path / "clip.dcm", [ultrasound_like(64, 48, seed=i) for i in range(4)], (0.3, 0.3),
                          {"id": "P-5", "name": "A^B"})
    svc = make_service(tmp_path / "d", max_frames=3)
    r = svc.client("doc").post("/api/studies", files=[("files", ("clip.dcm", path.read_bytes()))])
    assert r.status_code == 413 and "4 frames" in r.json()["detail"], r.text


def test_malformed_files_fail_cleanly(service, doc):
    study = upload(doc, MALFORMED)
    d = wait_done(service, doc, study["uid"])
    assert d["status"] == "failed" and d["frames"] == []
    assert d["error"] and "/studies/" not in d["error"]  # readable reasons, no server path
    for f in d["files"]:
        assert f["error"], f  # every file says why
        assert "/studies/" not in f["error"]
    assert doc.get("/api/studies").status_code == 200


def test_good_file_survives_next_to_a_bad_one(service, doc):
    study = upload(doc, [("bad.png", b"garbage"), ("good.png", png_bytes(ultrasound_like()))])
    d = wait_done(service, doc, study["uid"])
    assert d["status"] == "done" and len(d["frames"]) == 1
    errors = {f["name"]: f["error"] for f in d["files"]}
    assert errors["bad.png"] and not errors["good.png"]


def test_sql_injection_strings_in_every_text_field(service, doc, admin):
    c = service.client()
    for s in SQL_INJECTIONS:
        r = c.post("/api/login", json={"username": s, "password": s})
        assert r.status_code in (401, 429)
        r = admin.post("/api/users", json={"username": s, "password": s + "-long-enough", "role": s})
        assert r.status_code == 422
        assert admin.post(f"/api/users/{s}/unlock").status_code in (404, 422)
        assert admin.get("/api/audit", params={"user": s, "action": s}).status_code == 200
        assert doc.get("/api/studies", params={"q": s}).status_code == 200
        assert doc.get(f"/api/studies/{s}").status_code == 404
        assert admin.post("/api/models/detector/activate", json={"version": s}).status_code == 404
        assert doc.post("/api/pacs/retrieve", json={"patient_id": s}).status_code in (409, 422)
    study = upload(doc, [(SQL_INJECTIONS[2] + ".png", png_bytes(ultrasound_like()))], description=SQL_INJECTIONS[0],
                   patient_id=SQL_INJECTIONS[1], patient_name=SQL_INJECTIONS[3])
    d = wait_done(service, doc, study["uid"])
    assert d["description"] == SQL_INJECTIONS[0] and d["patient_id"] == SQL_INJECTIONS[1]  # stored verbatim
    assert len(doc.get("/api/studies", params={"q": "' OR '1'='1"}).json()) == 1  # matched literally
    assert doc.get("/api/studies", params={"q": "no-such-thing' OR '1'='1"}).json() == []
    with service.state.sm() as db:
        assert db.query(User).count() == 3 and db.query(Study).count() == 1


def test_concurrent_uploads_lose_nothing(service):
    clients = [service.client("doc") for _ in range(6)]
    results: list[int] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        r = clients[i].post("/api/studies", files=[("files", (f"c{i}.png", png_bytes(ultrasound_like(seed=i))))],
                            data={"description": f"concurrent {i}"})
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [202] * 6
    assert service.state.worker.wait_idle(120)
    studies = clients[0].get("/api/studies").json()
    assert sorted(s["description"] for s in studies) == sorted(f"concurrent {i}" for i in range(6))
    assert all(s["status"] == "done" and s["n_frames"] == 1 for s in studies)


def test_bad_requests_never_500(service, doc, admin):
    attempts = [
        doc.post("/api/studies"),
        doc.post("/api/studies", data={"description": "x" * 10000}, files=[("files", ("a.png", b"x"))]),
        doc.post("/api/studies", content=b"not multipart", headers={"content-type": "multipart/form-data; boundary=q"}),
        doc.post("/api/outcomes", content=b"{bad json", headers={"content-type": "application/json"}),
        doc.post("/api/outcomes", json={"frame_id": "x", "lesion_id": 1, "malignant": True, "method": "pathology"}),
        doc.post("/api/outcomes", json={"frame_id": 999, "lesion_id": 1, "malignant": True, "method": "pathology"}),
        doc.post("/api/outcomes/import", files=[("file", ("o.csv", b"\xff\xfe\x00bad"))]),
        doc.post("/api/outcomes/import", files=[("file", ("o.csv", b"a,b\n1,2\n"))]),
        doc.get("/api/frames/99999/image.png"), doc.get("/api/frames/abc/overlay.png"),
        doc.get("/api/studies", params={"limit": "-5", "offset": "-1"}),
        doc.get("/api/studies", params={"limit": "many"}),
        admin.post("/api/login", json=["not", "an", "object"]),
        admin.post("/api/login", content=b"\x00\x01", headers={"content-type": "application/json"}),
        admin.post("/api/models/../../etc/rollback"),
        admin.post("/api/models/detector/activate", json={"version": "../../x"}),
        admin.post("/api/alerts/12345/dismiss"),
        admin.put("/api/me/language", json={"language": None}),
    ]
    for r in attempts:
        assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:200])


def test_security_headers(service, doc):
    for r in (doc.get("/"), doc.get("/api/studies"), doc.get("/healthz"), service.client().get("/api/studies")):
        h = r.headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert "default-src 'self'" in h["content-security-policy"]
        assert h["referrer-policy"] == "no-referrer"
    assert doc.get("/api/studies").headers["cache-control"] == "no-store"


def test_data_directory_is_private(service, doc):
    study = upload(doc, [("a.png", png_bytes(ultrasound_like()))])
    wait_done(service, doc, study["uid"])
    data_dir = service.state.data_dir
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert (data_dir / "livus.db").stat().st_mode & 0o077 == 0
    study_dir = data_dir / "studies" / study["uid"]
    files = [p for p in study_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".png" and "files" in p.parts for p in files) and any(p.suffix == ".pdf" for p in files)
    for p in files:
        assert p.stat().st_mode & 0o077 == 0, p  # uploads, overlays, reports: owner only
