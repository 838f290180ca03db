"""Fixtures for the service tests: a service on a temporary data directory with one account per
role, logged-in clients, and small synthetic ultrasound-like images."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient  # noqa: E402

from livus.config import ServiceConfig  # noqa: E402
from livus.service.app import create_app  # noqa: E402
from livus.service.auth import create_user  # noqa: E402

PASSWORDS = {"admin": "admin-pass-123", "doc": "doctor-pass-123", "res": "research-pass-123"}
ROLES = {"admin": "admin", "doc": "physician", "res": "researcher"}


def ultrasound_like(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A grey frame with a fan of speckle, a dark round 'lesion' and burned-in text outside the fan."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), np.uint8)
    fan = np.zeros_like(img)
    apex = (width // 2, int(height * 0.05))
    cv2.ellipse(fan, apex, (int(height * 0.9), int(height * 0.9)), 90, -35, 35, 255, -1)
    speckle = np.clip(rng.gamma(2.0, 40.0, img.shape), 0, 255).astype(np.uint8)
    img[fan > 0] = speckle[fan > 0]
    cv2.circle(img, (width // 2, int(height * 0.55)), max(6, height // 12), 25, -1)
    cv2.putText(img, "DOE^JOHN", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1)
    return img


def png_bomb(side_px: int = 60000) -> bytes:
    """A tiny PNG whose header claims ``side_px`` × ``side_px`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side_px, side_px, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


def png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    """Cheap argon2 parameters for the tests only (the service default is argon2-cffi's RFC 9106
    low-memory profile, ~0.1-0.5 s per hash here); test_auth checks the default."""
    from argon2 import PasswordHasher

    import livus.service.auth as auth

    default = auth._HASHER
    auth._HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    auth._HASHER = default


@dataclass
class Service:
    app: object
    cfg: ServiceConfig
    state: object

    def client(self, user: str | None = None) -> TestClient:
        return self.client_with(user, PASSWORDS[user] if user else "")

    def client_with(self, user: str | None, password: str) -> TestClient:
        """A client logged in as ``user`` (none: not logged in), with its CSRF header set."""
        c = TestClient(self.app)
        c.csrf = ""  # type: ignore[attr-defined]
        if user:
            r = c.post("/api/login", json={"username": user, "password": password})
            assert r.status_code == 200, r.text
            c.csrf = r.json()["csrf_token"]  # type: ignore[attr-defined]
            c.headers["X-CSRF-Token"] = c.csrf  # type: ignore[attr-defined]
        return c


def make_service(data_dir: Path, **overrides: object) -> Service:
    """A service on ``data_dir`` with the three accounts; analysis in one thread of this process
    (worker processes have their own tests) unless ``overrides`` say otherwise."""
    overrides = {"analysis_in_process": True, "analysis_workers": 1, **overrides}
    cfg = ServiceConfig(data_dir=str(data_dir), **overrides)
    app = create_app(cfg)
    state = app.state.livus
    with state.sm() as db:
        for name, role in ROLES.items():
            create_user(db, name, PASSWORDS[name], role, language="en" if name == "res" else "zh")
    return Service(app, cfg, state)


DEPARTMENT_USERS = {"hep": ("hepatology-pass-1", "hepatology"), "rad": ("radiology-pass-1", "radiology")}


def add_department_users(svc: Service) -> dict[str, TestClient]:
    """Physicians ``hep`` (hepatology) and ``rad`` (radiology), logged in: name → client."""
    with svc.state.sm() as db:
        for name, (password, department) in DEPARTMENT_USERS.items():
            create_user(db, name, password, "physician", department=department)
    return {name: svc.client_with(name, password) for name, (password, _) in DEPARTMENT_USERS.items()}


@pytest.fixture()
def service(tmp_path: Path):
    svc = make_service(tmp_path / "data", max_upload_mb=2.0)
    with TestClient(svc.app):  # runs the lifespan: analysis worker started and stopped
        yield svc


@pytest.fixture()
def doc(service: Service) -> TestClient:
    return service.client("doc")


@pytest.fixture()
def admin(service: Service) -> TestClient:
    return service.client("admin")


@pytest.fixture()
def researcher(service: Service) -> TestClient:
    return service.client("res")


def upload(client: TestClient, files: list[tuple[str, bytes]], **form: str) -> dict:
    r = client.post("/api/studies", files=[("files", (n, b, "application/octet-stream")) for n, b in files], data=form)
    assert r.status_code == 202, r.text
    return r.json()


def wait_done(service: Service, client: TestClient, uid: str) -> dict:
    assert service.state.worker.wait_idle(90)
    r = client.get(f"/api/studies/{uid}")
    assert r.status_code == 200, r.text
    return r.json()


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    port = free_loopback_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(15)


def upload_as_doctor(page: object, url: str, path: Path, timeout_ms: int = 60000) -> None:
    """In a Playwright ``page``: log in as the test doctor at ``url``, upload ``path`` and wait
    until the study's analysis is done."""
    page.goto(url)
    page.fill("#login-user", "doc")
    page.fill("#login-pass", PASSWORDS["doc"])
    page.click("#login-submit")
    page.wait_for_selector("#view-studies:not([hidden])")
    page.set_input_files("#upload-files", str(path))
    page.click("#upload-submit")
    page.wait_for_function("document.querySelector('#study-detail').dataset.status === 'done'", timeout=timeout_ms)
