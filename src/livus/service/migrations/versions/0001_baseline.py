"""Baseline: the schema of the last release without migrations.

A new database gets every table here. A database that release (or an older one) made has no
``alembic_version`` table yet: it gets what it lacks (tables, the columns added after the first
release, their indexes) and keeps its rows. The schema is frozen in this file, independent of
the models in :mod:`livus.service.storage` (later changes are later revisions).

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_tz = sa.DateTime(timezone=True)
SCHEMA = sa.MetaData()
sa.Table(
    "users", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, index=True, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("language", sa.String(4), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", _tz, nullable=True),
    sa.Column("created_at", _tz, nullable=False),
)
sa.Table(
    "sessions", SCHEMA,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", _tz, nullable=False),
    sa.Column("expires_at", _tz, nullable=False),
)
sa.Table(
    "studies", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(32), nullable=False, index=True, unique=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("patient_id", sa.String(128), nullable=False),
    sa.Column("patient_name", sa.String(256), nullable=False),
    sa.Column("study_instance_uid", sa.String(128), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("case_json", sa.JSON, nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("department", sa.String(64), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", _tz, nullable=False),
)
sa.Table(
    "files", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("original_name", sa.String(255), nullable=False),
    sa.Column("stored_path", sa.String(500), nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
)
sa.Table(
    "frames", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(32), nullable=False, index=True, unique=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=True),
    sa.Column("frame_index", sa.Integer, nullable=False),
    sa.Column("width_px", sa.Integer, nullable=False),
    sa.Column("height_px", sa.Integer, nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("n_lesions", sa.Integer, nullable=False),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("overlay_path", sa.String(500), nullable=False),
    sa.Column("stats", sa.JSON, nullable=True),
    sa.Column("created_at", _tz, nullable=False),
)
sa.Table(
    "reports", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("created_at", _tz, nullable=False),
)
sa.Table(
    "outcomes", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("frame_id", sa.Integer, sa.ForeignKey("frames.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("lesion_id", sa.Integer, nullable=False),
    sa.Column("malignant", sa.Boolean, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("predicted", sa.Float, nullable=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("confirmed_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_at", _tz, nullable=False),
)
sa.Table(
    "alerts", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", _tz, nullable=False),
)
sa.Table(
    "audit_events", SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("time", _tz, nullable=False, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
)



def added_columns() -> list[tuple[str, sa.Column]]:
    """Columns added after the first release, before migrations (the old ``add_missing_columns``):
    an old database gets them with these defaults; ``frames.uid`` is filled with random values.
    (New objects each call: alembic attaches a column to a table.)"""
    return [
        ("users", sa.Column("department", sa.String(64), nullable=False, server_default="")),
        ("studies", sa.Column("department", sa.String(64), nullable=False, server_default="")),
        ("studies", sa.Column("attempts", sa.Integer, nullable=False, server_default="0")),
        ("frames", sa.Column("uid", sa.String(32), nullable=True)),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    SCHEMA.create_all(bind, checkfirst=True)  # a new database: everything; an old one: missing tables
    insp = sa.inspect(bind)
    for table, column in added_columns():
        if column.name not in {c["name"] for c in insp.get_columns(table)}:
            op.add_column(table, column)
    frames = SCHEMA.tables["frames"]
    for (fid,) in bind.execute(sa.select(frames.c.id).where(frames.c.uid.is_(None))).all():
        bind.execute(frames.update().where(frames.c.id == fid).values(uid=secrets.token_urlsafe(16)))
    insp = sa.inspect(bind)
    if any(c["name"] == "uid" and c["nullable"] for c in insp.get_columns("frames")):
        with op.batch_alter_table("frames") as batch:  # SQLite: a copy of the table (foreign keys off)
            batch.alter_column("uid", existing_type=sa.String(32), nullable=False)
        insp = sa.inspect(bind)
    # indexes of the added columns (old databases got the columns only)
    for table in SCHEMA.sorted_tables:
        have = {ix["name"] for ix in insp.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                index.create(bind)


def downgrade() -> None:
    SCHEMA.drop_all(op.get_bind())
