"""Password hashing, accounts, the login back-off and the login rate limiter as plain functions."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from livus.service import auth
from livus.service.auth import AuthError, LoginThrottle, RateLimiter, authenticate, create_user, verify_password
from livus.service.storage import make_engine, make_sessionmaker


def test_default_hasher_is_argon2id():
    h = PasswordHasher().hash("a-password-here")  # what the service uses outside the tests
    assert h.startswith("$argon2id$")
    assert verify_password(h, "a-password-here") and not verify_password(h, "other")
    assert not verify_password("not-a-hash", "x")


def test_authenticate_and_accounts(tmp_path):
    sm = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    with sm() as db:
        user = create_user(db, "ann", "ann-password-1", "physician", department="hepatology")
        assert user.password_hash.startswith("$argon2") and user.department == "hepatology"
        assert "ann-password-1" not in user.password_hash
        for name, password in (("ann", "wrong-password"), ("nobody", "ann-password-1")):
            with pytest.raises(AuthError):
                authenticate(db, name, password)
        assert authenticate(db, "ann", "ann-password-1").username == "ann"
        user.active = False
        db.commit()
        with pytest.raises(AuthError):
            authenticate(db, "ann", "ann-password-1")
        with pytest.raises(ValueError):
            create_user(db, "ann", "ann-password-1", "physician")
        with pytest.raises(ValueError):
            create_user(db, "bob", "ann-password-1", "superuser")
        with pytest.raises(ValueError):
            create_user(db, "b o b", "ann-password-1", "physician")


def test_login_throttle_backs_off_per_name_and_address(tmp_path):
    sm = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    t = LoginThrottle(sm, account_failures=3, address_failures=100, block_s=60)
    for _ in range(3):
        assert not t.blocked("admin", "a", now=0)
        t.failed("admin", "a", now=0)
    assert t.blocked("admin", "a", now=1) and not t.blocked("admin", "b", now=1)  # other addresses still log in
    assert t.locked("admin", now=1) and not t.blocked("admin", "a", now=61)
    for _ in range(3):
        t.failed("admin", "a", now=61)
    assert t.blocked("admin", "a", now=61 + 100) and not t.blocked("admin", "a", now=61 + 121)  # doubled
    t.unlock("admin")
    assert not t.blocked("admin", "a", now=62)
    for _ in range(6 * 3):  # the wait doubles up to 16 x, no further
        t.failed("admin", "a", now=10_000)
    assert t.blocked("admin", "a", now=10_000 + 16 * 60 - 1) and not t.blocked("admin", "a", now=10_000 + 16 * 60 + 1)
    spray = LoginThrottle(sm, account_failures=100, address_failures=3, block_s=60)
    for i in range(3):
        spray.failed(f"u{i}", "x", now=0)
    assert spray.blocked("anyone", "x", now=1) and not spray.blocked("anyone", "y", now=1)


def test_rate_limiter_sliding_window():
    rl = RateLimiter(limit=2, window_s=10)
    assert rl.allow("ip", now=0) and rl.allow("ip", now=1)
    assert not rl.allow("ip", now=2)
    assert rl.allow("other", now=2)
    assert rl.allow("ip", now=10.5)  # the first attempt left the window


def test_session_tokens_are_stored_hashed(tmp_path):
    sm = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    with sm() as db:
        user = create_user(db, "ann", "ann-password-1", "physician")
        new = auth.start_session(db, user, hours=1)
        assert new.record.token_sha256 != new.token and len(new.record.token_sha256) == 64
        assert auth.session_for_token(db, new.token).user_id == user.id
        assert auth.session_for_token(db, new.token + "x") is None
        auth.end_session(db, new.token)
        assert auth.session_for_token(db, new.token) is None
