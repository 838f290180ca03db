"""Accounts, passwords (argon2id via argon2-cffi), login sessions, rate limiting and lock-out.

A login creates a random session token; the client keeps it (HttpOnly cookie, or a bearer
token for scripts), the database keeps only its SHA-256 and a per-session CSRF token that
state-changing cookie requests must echo in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import unicodedata
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from livus.service.storage import ROLES, LoginBackoff, LoginSession, User, as_utc, utcnow

USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

_HASHER = PasswordHasher()
# Verified against when a user does not exist, so a wrong user name costs the same time.
_DUMMY_HASH = _HASHER.hash("livus-dummy-password")


class AuthError(Exception):
    """Login refused; ``reason`` is for the log, the client sees one generic message."""

    def __init__(self, reason: str, locked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked = locked


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def validate_username(username: str) -> str:
    """The user name if valid (1–64 of ``[A-Za-z0-9._-]``), else ``ValueError``."""
    if not 1 <= len(username) <= 64 or not set(username) <= USERNAME_CHARS:
        raise ValueError("user name: 1-64 characters of A-Z a-z 0-9 . _ -")
    return username


def validate_department(department: str) -> str:
    """The department name stripped (at most 64 printable characters), else ``ValueError``."""
    if len(department) > 64 or any(unicodedata.category(ch)[0] == "C" for ch in department):
        raise ValueError(f"department {department[:64]!r}: at most 64 printable characters")
    return department.strip()


def validate_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(f"password: {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters")
    return password


def create_user(db: Session, username: str, password: str, role: str, language: str = "zh", department: str = "") -> User:
    """Add an account (``ValueError`` for a bad name/password/role or a taken name); a user
    sees the studies of ``department`` (admins see all)."""
    validate_username(username)
    validate_password(password)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if language not in ("zh", "en"):
        raise ValueError("language must be zh or en")
    if db.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} exists already")
    user = User(username=username, password_hash=hash_password(password), role=role, language=language,
                department=validate_department(department))
    db.add(user)
    db.commit()
    return user


def set_password(db: Session, user: User, password: str) -> None:
    validate_password(password)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    db.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    db.commit()


def authenticate(db: Session, username: str, password: str) -> User:
    """The user for a correct name/password of an active account, else :class:`AuthError`
    (an unknown name costs the same hashing time as a wrong password). Failed-login back-off
    is :class:`LoginThrottle`'s job."""
    user = db.scalar(select(User).where(User.username == username)) if len(username) <= 64 else None
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise AuthError(f"unknown user {username[:64]!r}")
    if not verify_password(user.password_hash, password):
        raise AuthError(f"wrong password for {username!r}")
    if not user.active:
        raise AuthError(f"account {username!r} disabled")
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    db.commit()
    return user


class LoginThrottle:
    """Back-off after failed logins, kept in the database (table ``login_backoff``): shared by
    every process of the service and kept over restarts. Keyed so that nobody can lock anyone
    else out:

    * ``account_failures`` consecutive wrong passwords for one user name FROM ONE CLIENT ADDRESS
      block that (name, address) pair for ``block_s`` seconds, doubling with each further block
      (at most 16 ×). The same account still logs in from any other address: an attacker can
      slow down only their own guesses, never lock the administrator out.
    * ``address_failures`` wrong passwords from one address (any names: password spraying)
      block that address for ``block_s``.

    Unknown and known user names are counted alike, and a blocked attempt gets the same answer as
    a wrong password, so the answers never tell whether a name exists. A success clears the pair.
    Times are POSIX seconds (wall clock, so that they mean the same after a restart); rows idle
    for :attr:`FORGET_S` and not blocked are forgotten.
    """

    FORGET_S = 86400.0  # an idle failure count older than this starts again from 0
    MAX_DOUBLINGS = 4  # the wait grows to block_s × 2**4 at most

    def __init__(self, sm: sessionmaker, account_failures: int, address_failures: int, block_s: float) -> None:
        self.sm = sm
        self.account_failures = max(1, account_failures)
        self.address_failures = max(1, address_failures)
        self.block_s = block_s

    @staticmethod
    def _key(scope: str, username: str, address: str) -> Any:
        return and_(LoginBackoff.scope == scope, LoginBackoff.username == username[:64],
                    LoginBackoff.address == address[:64])

    def blocked(self, username: str, address: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self.sm() as db:
            found = db.scalar(select(func.count()).select_from(LoginBackoff).where(
                or_(self._key("account", username, address), self._key("address", "", address)),
                LoginBackoff.blocked_until_s > now))
        return bool(found)

    def _count(self, db: Session, scope: str, username: str, address: str, threshold: int, now: float) -> None:
        """One more failure on a row (created when missing; the UPDATE takes the row's write lock,
        so concurrent processes count every failure); at ``threshold`` the row is blocked."""
        key = {"scope": scope, "username": username[:64], "address": address[:64]}
        dialect = db.get_bind().dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite_insert if dialect == "sqlite" else pg_insert
            db.execute(insert(LoginBackoff).values(**key, failures=0, blocks=0, blocked_until_s=0.0, updated_s=now)
                       .on_conflict_do_nothing())
        elif db.get(LoginBackoff, key) is None:
            db.add(LoginBackoff(**key, failures=0, blocks=0, blocked_until_s=0.0, updated_s=now))
            db.flush()
        where = self._key(scope, username, address)
        db.execute(update(LoginBackoff).where(where).values(failures=LoginBackoff.failures + 1, updated_s=now))
        row = db.scalars(select(LoginBackoff).where(where).execution_options(populate_existing=True)).one()
        if row.failures >= threshold:
            row.failures = 0
            if scope == "account":
                row.blocks = min(row.blocks + 1, self.MAX_DOUBLINGS + 1)
                row.blocked_until_s = now + self.block_s * 2 ** (row.blocks - 1)
            else:
                row.blocked_until_s = now + self.block_s

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.sm() as db:
            self._count(db, "account", username, address, self.account_failures, now)
            self._count(db, "address", "", address, self.address_failures, now)
            db.execute(delete(LoginBackoff).where(LoginBackoff.updated_s < now - self.FORGET_S,
                                                  LoginBackoff.blocked_until_s < now))
            db.commit()

    def succeeded(self, username: str, address: str) -> None:
        with self.sm() as db:
            db.execute(delete(LoginBackoff).where(self._key("account", username, address)))
            db.commit()

    def unlock(self, username: str) -> None:
        """Lift every block of ``username`` (administrator)."""
        with self.sm() as db:
            lift_backoff(db, username)

    def locked(self, username: str, now: float | None = None) -> bool:
        """Whether some address is blocked from logging in as ``username``."""
        with self.sm() as db:
            return backoff_locked(db, username, now)


def lift_backoff(db: Session, username: str) -> None:
    """Forget the failed logins of ``username`` from every address (``/api/users/…/unlock``,
    ``livus user unlock``; also reaches a running service: the back-off lives in the database)."""
    db.execute(delete(LoginBackoff).where(LoginBackoff.scope == "account", LoginBackoff.username == username[:64]))
    db.commit()


def backoff_locked(db: Session, username: str, now: float | None = None) -> bool:
    """Whether some address is blocked from logging in as ``username`` (``now``: POSIX s)."""
    now = time.time() if now is None else now
    found = db.scalar(select(func.count()).select_from(LoginBackoff).where(
        LoginBackoff.scope == "account", LoginBackoff.username == username[:64], LoginBackoff.blocked_until_s > now))
    return bool(found)


def forwarded_client(peer: str, forwarded_for: str | None, trusted_proxies: tuple[str, ...] | list[str]) -> str:
    """The client's address: the connection's ``peer`` unless it is one of ``trusted_proxies``;
    then ``X-Forwarded-For`` read from the right, skipping trusted proxies (the first address
    a trusted proxy did not add itself could be forged by anyone)."""
    if not forwarded_for or peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop[:64]
    return peer


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass
class NewSession:
    token: str  # give to the client; never stored
    csrf_token: str
    record: LoginSession


def start_session(db: Session, user: User, hours: float) -> NewSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    rec = LoginSession(
        token_sha256=token_digest(token), user_id=user.id, csrf_token=csrf,
        expires_at=utcnow() + timedelta(hours=hours),
    )
    db.add(rec)
    db.commit()
    return NewSession(token, csrf, rec)


def session_for_token(db: Session, token: str | None) -> LoginSession | None:
    """The live session of ``token`` (``None`` when missing, unknown, expired or user disabled)."""
    if not token or len(token) > 128:
        return None
    rec = db.get(LoginSession, token_digest(token))
    if rec is None:
        return None
    if as_utc(rec.expires_at) <= utcnow() or not rec.user.active:
        db.delete(rec)
        db.commit()
        return None
    return rec


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(LoginSession).where(LoginSession.token_sha256 == token_digest(token)))
        db.commit()


class RateLimiter:
    """At most ``limit`` events per ``window_s`` seconds per key (sliding window, in memory).

    Hand-written (a deque per key) because the one use — login attempts per client address —
    needs no storage backend; the lock makes it safe for the server's threads.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Record an attempt for ``key``; ``False`` when it is over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._events.setdefault(key, deque())
            while q and q[0] <= now - self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            if len(self._events) > 10000:  # forget idle keys
                for k in [k for k, v in self._events.items() if not v]:
                    del self._events[k]
            return True
