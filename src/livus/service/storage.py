"""Database of the service (SQLAlchemy 2): users, sessions, studies, files, frames with their
results, reports, confirmed outcomes, alerts and audit events.

SQLite under the data directory by default, PostgreSQL (or any SQLAlchemy URL) by
``ServiceConfig.database_url``. Files (uploads, overlays, reports) live on disk under the data
directory; the database only stores paths RELATIVE to it, never names chosen by a client.
All queries go through the ORM with bound parameters (no string-built SQL).
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker
from sqlalchemy.types import TypeDecorator

from livus.service.migrate import upgrade_database

ROLES = ("admin", "physician", "researcher")
STUDY_STATES = ("storing", "receiving", "queued", "running", "done", "failed")


def utcnow() -> datetime:
    """Timezone-aware UTC now (stored naive-UTC by SQLite, with zone by PostgreSQL)."""
    return datetime.now(timezone.utc)


def as_utc(t: datetime | None) -> datetime | None:
    """A stored time as timezone-aware UTC (SQLite drops the zone)."""
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def new_uid() -> str:
    """Random public identifier (URL-safe, 22 characters): ids in URLs are never guessable."""
    return secrets.token_urlsafe(16)


class _NoNul(TypeDecorator):
    """Text without NUL characters: PostgreSQL refuses them in text values and in query
    parameters, so a client sending ``\x00`` would otherwise cause a server error there."""

    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ANN201 - SQLAlchemy hook
        return value.replace("\x00", "") if isinstance(value, str) else value


class SafeString(_NoNul):
    impl = String
    cache_ok = True  # SQLAlchemy reads it from each class itself, not from the base


class SafeText(_NoNul):
    impl = Text
    cache_ok = True


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(SafeString(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(SafeString(255))
    role: Mapped[str] = mapped_column(SafeString(16))
    department: Mapped[str] = mapped_column(SafeString(64), default="")  # sees this department's studies
    language: Mapped[str] = mapped_column(SafeString(4), default="zh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginSession(Base):
    """A login: the client holds the token, the database only its SHA-256."""

    __tablename__ = "sessions"
    token_sha256: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(SafeString(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(SafeString(32), unique=True, index=True, default=new_uid)
    source: Mapped[str] = mapped_column(SafeString(16), default="upload")  # upload | dicom | pacs
    description: Mapped[str] = mapped_column(SafeString(500), default="")
    patient_id: Mapped[str] = mapped_column(SafeString(128), default="")
    patient_name: Mapped[str] = mapped_column(SafeString(256), default="")
    study_instance_uid: Mapped[str] = mapped_column(SafeString(128), default="", index=True)
    status: Mapped[str] = mapped_column(SafeString(16), default="queued")
    error: Mapped[str] = mapped_column(SafeText, default="")
    case_json: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    department: Mapped[str] = mapped_column(SafeString(64), default="", index=True)  # who may see it
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # analysis runs started (queue)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    files: Mapped[list[StudyFile]] = relationship(back_populates="study", cascade="all, delete-orphan")
    frames: Mapped[list[FrameRecord]] = relationship(back_populates="study", cascade="all, delete-orphan")
    reports: Mapped[list[Report]] = relationship(back_populates="study", cascade="all, delete-orphan")


class StudyFile(Base):
    """One stored input file (image, DICOM, clip) of a study."""

    __tablename__ = "files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    original_name: Mapped[str] = mapped_column(SafeString(255))  # display only, never a path
    stored_path: Mapped[str] = mapped_column(SafeString(500))  # relative to the data directory
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(SafeText, default="")
    study: Mapped[Study] = relationship(back_populates="files")


class FrameRecord(Base):
    """One analysed frame; ``result`` is its ``livus.result/1`` JSON."""

    __tablename__ = "frames"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(SafeString(32), unique=True, index=True, default=new_uid)  # in image URLs
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), nullable=True)
    frame_index: Mapped[int] = mapped_column(Integer, default=0)
    width_px: Mapped[int] = mapped_column(Integer, default=0)
    height_px: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict] = mapped_column(JSON)
    n_lesions: Mapped[int] = mapped_column(Integer, default=0)
    model_name: Mapped[str] = mapped_column(SafeString(64), default="none")
    model_version: Mapped[str] = mapped_column(SafeString(64), default="0")
    overlay_path: Mapped[str] = mapped_column(SafeString(500), default="")  # relative to the data dir
    stats: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # input statistics (drift)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    study: Mapped[Study] = relationship(back_populates="frames")


class Report(Base):
    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(SafeString(8))  # html | pdf
    path: Mapped[str] = mapped_column(SafeString(500))  # relative to the data directory
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    study: Mapped[Study] = relationship(back_populates="reports")


class Outcome(Base):
    """A physician-confirmed truth for one lesion of one analysed frame."""

    __tablename__ = "outcomes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"), index=True)
    lesion_id: Mapped[int] = mapped_column(Integer)
    malignant: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(SafeString(16))  # pathology | follow-up
    predicted: Mapped[float | None] = mapped_column(Float, nullable=True)  # malignancy at the time
    model_version: Mapped[str] = mapped_column(SafeString(64), default="0")
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(SafeString(32))  # performance | drift | rollback
    message: Mapped[str] = mapped_column(SafeText)
    model_version: Mapped[str] = mapped_column(SafeString(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    username: Mapped[str] = mapped_column(SafeString(64), default="")
    action: Mapped[str] = mapped_column(SafeString(32))  # login, view, export, upload, ...
    target: Mapped[str] = mapped_column(SafeString(255), default="")
    detail: Mapped[str] = mapped_column(SafeText, default="")
    client: Mapped[str] = mapped_column(SafeString(64), default="")


class LoginBackoff(Base):
    """Failed-login back-off (:class:`livus.service.auth.LoginThrottle`), shared by every
    process of the service and kept over restarts: one row per (user name, client address)
    (``scope`` ``account``) and one per client address (``scope`` ``address``, user name '')."""

    __tablename__ = "login_backoff"
    scope: Mapped[str] = mapped_column(SafeString(8), primary_key=True)  # account | address
    username: Mapped[str] = mapped_column(SafeString(64), primary_key=True)  # as typed at login ('' for address rows)
    address: Mapped[str] = mapped_column(SafeString(64), primary_key=True)  # client address
    failures: Mapped[int] = mapped_column(Integer, default=0)  # wrong passwords since the last block or success
    blocks: Mapped[int] = mapped_column(Integer, default=0)  # blocks so far (each doubles the wait)
    blocked_until_s: Mapped[float] = mapped_column(Float, default=0.0)  # POSIX time (s, UTC); 0 = not blocked
    updated_s: Mapped[float] = mapped_column(Float, default=0.0, index=True)  # POSIX time of the last failure


def private_file(path: Path) -> Path:
    """Create ``path`` (empty) readable by the owner only (0600); returns it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
    return Path(path)


def make_private(root: Path) -> None:
    """``root`` and every folder under it 0700, every file 0600 (the data directory holds
    patient images: nobody but the service's account may read it)."""
    root = Path(root)
    if not root.exists():
        return
    root.chmod(0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o700)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o600)


def database_url(data_dir: Path, url: str | None) -> str:
    """The configured URL, or the SQLite file ``<data_dir>/livus.db``."""
    return url or f"sqlite:///{Path(data_dir).resolve() / 'livus.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API objects
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the analysis worker
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Engine for ``url`` with the schema brought to the newest migration (a new database
    created, an old one upgraded: :mod:`livus.service.migrate`); SQLite: WAL, foreign keys,
    busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    upgrade_database(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
