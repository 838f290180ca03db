"""Failed-login back-off in the database (was in each process's memory): ``login_backoff``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_backoff",
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("blocks", sa.Integer, nullable=False),
        sa.Column("blocked_until_s", sa.Float, nullable=False),
        sa.Column("updated_s", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("scope", "username", "address"),
    )
    op.create_index("ix_login_backoff_updated_s", "login_backoff", ["updated_s"])


def downgrade() -> None:
    op.drop_index("ix_login_backoff_updated_s", table_name="login_backoff")
    op.drop_table("login_backoff")
