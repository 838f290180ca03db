"""Database migrations (Alembic): a new database is created at the newest revision, the models
and the migrations agree, and a database made before migrations keeps its rows."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from livus.config import ServiceConfig
from livus.service.app import create_app
from livus.service.auth import hash_password
from livus.service.migrate import current_revision, head_revision, upgrade_database
from livus.service.storage import Base, FrameRecord, Outcome, Study, make_engine, make_sessionmaker

# The schema the first release created (before departments, the durable queue and frame uids),
# as SQLite stored it; the last release before migrations added the columns in LATER_COLUMNS.
FIRST_RELEASE_SCHEMA = """
CREATE TABLE users (id INTEGER NOT NULL, username VARCHAR(64) NOT NULL, password_hash VARCHAR(255) NOT NULL,
  role VARCHAR(16) NOT NULL, language VARCHAR(4) NOT NULL, active BOOLEAN NOT NULL, failed_logins INTEGER NOT NULL,
  locked_until DATETIME, created_at DATETIME NOT NULL, PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_users_username ON users (username);
CREATE TABLE alerts (id INTEGER NOT NULL, kind VARCHAR(32) NOT NULL, message TEXT NOT NULL,
  model_version VARCHAR(64) NOT NULL, active BOOLEAN NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id));
CREATE TABLE sessions (token_sha256 VARCHAR(64) NOT NULL, user_id INTEGER NOT NULL, csrf_token VARCHAR(64) NOT NULL,
  created_at DATETIME NOT NULL, expires_at DATETIME NOT NULL, PRIMARY KEY (token_sha256),
  FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE);
CREATE INDEX ix_sessions_user_id ON sessions (user_id);
CREATE TABLE studies (id INTEGER NOT NULL, uid VARCHAR(32) NOT NULL, source VARCHAR(16) NOT NULL,
  description VARCHAR(500) NOT NULL, patient_id VARCHAR(128) NOT NULL, patient_name VARCHAR(256) NOT NULL,
  study_instance_uid VARCHAR(128) NOT NULL, status VARCHAR(16) NOT NULL, error TEXT NOT NULL, case_json JSON,
  created_by INTEGER, created_at DATETIME NOT NULL, PRIMARY KEY (id), FOREIGN KEY(created_by) REFERENCES users (id));
CREATE UNIQUE INDEX ix_studies_uid ON studies (uid);
CREATE INDEX ix_studies_study_instance_uid ON studies (study_instance_uid);
CREATE TABLE audit_events (id INTEGER NOT NULL, time DATETIME NOT NULL, user_id INTEGER, username VARCHAR(64) NOT NULL,
  action VARCHAR(32) NOT NULL, target VARCHAR(255) NOT NULL, detail TEXT NOT NULL, client VARCHAR(64) NOT NULL,
  PRIMARY KEY (id), FOREIGN KEY(user_id) REFERENCES users (id));
CREATE INDEX ix_audit_events_time ON audit_events (time);
CREATE TABLE files (id INTEGER NOT NULL, study_id INTEGER NOT NULL, original_name VARCHAR(255) NOT NULL,
  stored_path VARCHAR(500) NOT NULL, size_bytes INTEGER NOT NULL, error TEXT NOT NULL, PRIMARY KEY (id),
  FOREIGN KEY(study_id) REFERENCES studies (id) ON DELETE CASCADE);
CREATE INDEX ix_files_study_id ON files (study_id);
CREATE TABLE reports (id INTEGER NOT NULL, study_id INTEGER NOT NULL, kind VARCHAR(8) NOT NULL, path VARCHAR(500) NOT NULL,
  created_at DATETIME NOT NULL, PRIMARY KEY (id), FOREIGN KEY(study_id) REFERENCES studies (id) ON DELETE CASCADE);
CREATE INDEX ix_reports_study_id ON reports (study_id);
CREATE TABLE frames (id INTEGER NOT NULL, study_id INTEGER NOT NULL, file_id INTEGER, frame_index INTEGER NOT NULL,
  width_px INTEGER NOT NULL, height_px INTEGER NOT NULL, result JSON NOT NULL, n_lesions INTEGER NOT NULL,
  model_name VARCHAR(64) NOT NULL, model_version VARCHAR(64) NOT NULL, overlay_path VARCHAR(500) NOT NULL, stats JSON,
  created_at DATETIME NOT NULL, PRIMARY KEY (id), FOREIGN KEY(study_id) REFERENCES studies (id) ON DELETE CASCADE,
  FOREIGN KEY(file_id) REFERENCES files (id) ON DELETE CASCADE);
CREATE INDEX ix_frames_study_id ON frames (study_id);
CREATE TABLE outcomes (id INTEGER NOT NULL, frame_id INTEGER NOT NULL, lesion_id INTEGER NOT NULL, malignant BOOLEAN NOT NULL,
  method VARCHAR(16) NOT NULL, predicted FLOAT, model_version VARCHAR(64) NOT NULL, confirmed_by INTEGER,
  created_at DATETIME NOT NULL, PRIMARY KEY (id), FOREIGN KEY(frame_id) REFERENCES frames (id) ON DELETE CASCADE,
  FOREIGN KEY(confirmed_by) REFERENCES users (id));
CREATE INDEX ix_outcomes_frame_id ON outcomes (frame_id);
"""
LATER_COLUMNS = """
ALTER TABLE users ADD COLUMN department VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN department VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE frames ADD COLUMN uid VARCHAR(32);
"""
PASSWORD = "old-release-pass-1"


def _old_database(path: Path, last_release: bool) -> None:
    """A SQLite database as an old livus left it: one physician, one analysed study with a frame."""
    with sqlite3.connect(path) as con:
        con.executescript(FIRST_RELEASE_SCHEMA + (LATER_COLUMNS if last_release else ""))
        now = "2026-01-02 03:04:05.000000"
        con.execute("INSERT INTO users (id, username, password_hash, role, language, active, failed_logins, created_at) "
                    "VALUES (1, 'olddoc', ?, 'physician', 'en', 1, 0, ?)", (hash_password(PASSWORD), now))
        con.execute("INSERT INTO studies (id, uid, source, description, patient_id, patient_name, study_instance_uid, "
                    "status, error, case_json, created_by, created_at) VALUES (1, 'old-study-uid', 'upload', 'kept', "
                    "'PID-7', 'OLD^PATIENT', '', 'done', '', '{\"cases\": []}', 1, ?)", (now,))
        con.execute("INSERT INTO frames (id, study_id, frame_index, width_px, height_px, result, n_lesions, model_name, "
                    "model_version, overlay_path, created_at) VALUES (1, 1, 0, 64, 48, '{}', 0, 'm', '1', '', ?)", (now,))
        con.execute("INSERT INTO outcomes (frame_id, lesion_id, malignant, method, model_version, created_at) "
                    "VALUES (1, 0, 1, 'pathology', '1', ?)", (now,))


def test_new_database_is_at_head_and_matches_the_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    assert current_revision(engine) == head_revision()
    assert "login_backoff" in inspect(engine).get_table_names()
    with engine.connect() as conn:  # nothing the models define is missing from the migrations
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert upgrade_database(engine) == head_revision()  # a second start changes nothing


@pytest.mark.parametrize("last_release", [False, True], ids=["first-release", "last-release-before-migrations"])
def test_old_database_is_upgraded_without_data_loss(tmp_path, last_release):
    data = tmp_path / "data"
    data.mkdir()
    _old_database(data / "livus.db", last_release)
    app = create_app(ServiceConfig(data_dir=str(data), analysis_in_process=True, analysis_workers=1))
    engine = create_engine(f"sqlite:///{data / 'livus.db'}")
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"login_backoff", "alembic_version", "users", "studies"} <= tables
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    with make_sessionmaker(engine)() as db:
        study = db.query(Study).one()
        assert (study.uid, study.patient_id, study.description, study.department) == ("old-study-uid", "PID-7", "kept", "")
        assert len(db.query(FrameRecord).one().uid) >= 16  # old frames got random uids for their image URLs
        assert db.query(Outcome).one().method == "pathology"  # the frames table was copied, not cascaded away
    with TestClient(app) as c:  # the old account logs in and still sees its study
        r = c.post("/api/login", json={"username": "olddoc", "password": PASSWORD})
        assert r.status_code == 200, r.text
        studies = c.get("/api/studies").json()
        assert [(s["uid"], s["patient_id"]) for s in studies] == [("old-study-uid", "PID-7")]


def test_processes_starting_together_take_turns(tmp_path):
    """Like uvicorn --workers: three processes migrate the same new SQLite file at once, and all
    start (a smoke test: here the race did not show even without the lock)."""
    db = tmp_path / "livus.db"
    code = ("import sys; from livus.service.storage import make_engine; from livus.service.migrate import current_revision; "
            "print(current_revision(make_engine('sqlite:///' + sys.argv[1])))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    assert {out.strip() for out, _ in outs} == {head_revision()}
