"""The service on PostgreSQL: a private server (Debian's package) on a Unix socket in a temp
folder, started by the test set-up; skipped with a message when PostgreSQL is unavailable."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from livus.service.storage import Study, User

from .conftest import make_service, png_bytes, ultrasound_like, upload, wait_done
from .system_packages import ensure_debian_package
from .test_security import SQL_INJECTIONS

pytestmark = pytest.mark.slow


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found and ensure_debian_package("pg_ctlcluster", "postgresql") is not None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the 'postgres' user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def postgres_url():
    pytest.importorskip("psycopg", reason="psycopg not installed")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL (Debian package 'postgresql') not available: PostgreSQL tests skipped")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    root = Path(tempfile.mkdtemp(prefix="livus-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    try:
        subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "livus", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
                                     "-o", f"-k {sock} -c listen_addresses='' -p 5432", "start"]),
                       check=True, capture_output=True, timeout=90)
        subprocess.run(_as_postgres([str(bin_dir / "createdb"), "-h", str(sock), "-U", "livus", "livus"]),
                       check=True, capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"PostgreSQL could not be started: {exc}")
    try:
        yield f"postgresql+psycopg://livus@/livus?host={sock}"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def pg_service(postgres_url, tmp_path):
    from sqlalchemy import create_engine, text

    from livus.service.storage import Base

    engine = create_engine(postgres_url)
    Base.metadata.drop_all(engine)  # each test starts from an empty database (migrated again at start)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    svc = make_service(tmp_path / "data", database_url=postgres_url)
    with TestClient(svc.app):
        yield svc


def test_postgres_upload_analyse_and_roles(pg_service):
    svc = pg_service
    doc, res = svc.client("doc"), svc.client("res")
    study = upload(doc, [("a.png", png_bytes(ultrasound_like()))], patient_id="PG-1", description=SQL_INJECTIONS[0])
    d = wait_done(svc, doc, study["uid"])
    assert d["status"] == "done" and len(d["frames"]) == 1 and d["description"] == SQL_INJECTIONS[0]
    assert "PG-1" not in str(res.get(f"/api/studies/{study['uid']}").json())
    for s in SQL_INJECTIONS:
        assert svc.client().post("/api/login", json={"username": s, "password": s}).status_code in (401, 429)
        assert doc.get("/api/studies", params={"q": s}).status_code == 200
    with svc.state.sm() as db:
        assert db.query(User).count() == 3 and db.query(Study).count() == 1
    events = svc.client("admin").get("/api/audit").json()
    assert {"login", "upload", "view"} <= {e["action"] for e in events}


def test_postgres_lockout_and_outcomes(pg_service):
    svc = pg_service
    c = svc.client()
    for _ in range(svc.cfg.lockout_failures):
        c.post("/api/login", json={"username": "doc", "password": "wrong-password"})
    assert c.post("/api/login", json={"username": "doc", "password": "doctor-pass-123"}).status_code == 401  # backing off
    t0 = time.monotonic()
    assert svc.client("admin").get("/api/monitor").status_code == 200
    assert time.monotonic() - t0 < 10


def test_postgres_nul_and_long_strings_never_500(pg_service):
    svc = pg_service
    doc, admin = svc.client("doc"), svc.client("admin")
    nul = "a\x00b"
    assert svc.client().post("/api/login", json={"username": nul, "password": nul}).status_code == 401
    assert svc.client().post("/api/login", json={"username": "x" * 200, "password": "y"}).status_code == 401
    assert doc.get("/api/studies", params={"q": nul}).status_code == 200
    assert doc.get("/api/studies/a%00b").status_code == 404
    assert admin.get("/api/audit", params={"user": nul, "action": "x" * 300}).status_code == 200
    assert admin.post("/api/users/a%00b/unlock").status_code == 404
    study = upload(doc, [("n\x00ame.png", png_bytes(ultrasound_like()))], description=nul, patient_id=nul, patient_name=nul)
    d = wait_done(svc, doc, study["uid"])
    assert d["status"] == "done" and d["description"] == "ab"
