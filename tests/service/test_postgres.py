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


def test_postgres_old_database_is_upgraded_without_data_loss(postgres_url, tmp_path):
    """A PostgreSQL database as the first release left it (no departments, queue attempts, frame
    uids; no alembic_version): the service migrates it and keeps its rows."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from livus.service.auth import hash_password
    from livus.service.migrate import alembic_config, current_revision, head_revision
    from livus.service.storage import Base, FrameRecord, Outcome

    engine = sa.create_engine(postgres_url)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    baseline = ScriptDirectory.from_config(alembic_config()).get_revision("0001").module
    baseline.SCHEMA.create_all(engine)
    with engine.begin() as conn:  # back to the first release: without the columns added later
        for table, column in baseline.added_columns():
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column.name}"))
    old = sa.MetaData()
    old.reflect(engine)
    now = time.strftime("%Y-%m-%d %H:%M:%S+00")
    with engine.begin() as conn:
        t = old.tables
        user_id = conn.execute(t["users"].insert().values(username="olddoc", password_hash=hash_password("old-release-pass-1"),
                                                role="physician", language="en", active=True, failed_logins=0, created_at=now)
                               ).inserted_primary_key[0]
        study_id = conn.execute(t["studies"].insert().values(uid="old-study-uid", source="upload", description="kept",
                                                  patient_id="PID-7", patient_name="OLD^PATIENT", study_instance_uid="",
                                                  status="done", error="", case_json={"cases": []}, created_by=user_id,
                                                            created_at=now)).inserted_primary_key[0]
        frame_id = conn.execute(t["frames"].insert().values(study_id=study_id, frame_index=0, width_px=64, height_px=48, result={},
                                                 n_lesions=0, model_name="m", model_version="1", overlay_path="",
                                                           created_at=now)).inserted_primary_key[0]
        conn.execute(t["outcomes"].insert().values(frame_id=frame_id, lesion_id=0, malignant=True, method="pathology",
                                                   model_version="1", created_at=now))
    svc = make_service(tmp_path / "data", database_url=postgres_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    with svc.state.sm() as db:
        assert db.query(Study).one().patient_id == "PID-7" and db.query(User).count() == 4
        assert len(db.query(FrameRecord).one().uid) >= 16 and db.query(Outcome).one().method == "pathology"
    with TestClient(svc.app):
        c = svc.client_with("olddoc", "old-release-pass-1")
        assert [s["uid"] for s in c.get("/api/studies").json()] == ["old-study-uid"]
    engine.dispose()


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
