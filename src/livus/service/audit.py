"""Audit log: who viewed, exported, uploaded or changed what, and when (UTC)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from livus.service.storage import AuditEvent, User

log = logging.getLogger("livus.audit")


def record(db: Session, user: User | None, action: str, target: str = "", detail: str = "", client: str = "",
           commit: bool = True) -> AuditEvent:
    """Append one event (also written to the ``livus.audit`` logger)."""
    ev = AuditEvent(
        user_id=user.id if user else None, username=user.username if user else "",
        action=action[:32], target=target[:255], detail=detail[:2000], client=client[:64],
    )
    db.add(ev)
    if commit:
        db.commit()
    log.info("audit user=%s action=%s target=%s detail=%s", ev.username or "-", action, target, detail[:200])
    return ev


def event_dict(ev: AuditEvent) -> dict[str, Any]:
    return {
        "id": ev.id, "time": ev.time.isoformat(), "user": ev.username, "action": ev.action,
        "target": ev.target, "detail": ev.detail, "client": ev.client,
    }


def list_events(db: Session, limit: int = 200, user: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """Newest first."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(max(1, min(limit, 5000)))
    if user:
        q = q.where(AuditEvent.username == user)
    if action:
        q = q.where(AuditEvent.action == action)
    return [event_dict(e) for e in db.scalars(q)]
