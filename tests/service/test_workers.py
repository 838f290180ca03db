"""The analysis queue: studies wait in the database, worker processes analyse several at once,
and a study cut off by a crash is analysed again after a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from livus.service.storage import Study, database_url, make_engine, make_sessionmaker

from .conftest import make_service, png_bytes, ultrasound_like, upload, wait_done


def test_cut_off_study_resumes_and_gives_up_after_max_attempts(tmp_path):
    svc = make_service(tmp_path / "d", analysis_max_attempts=2)
    doc = svc.client("doc")
    with TestClient(svc.app):
        uid = upload(doc, [("a.png", png_bytes(ultrasound_like()))])["uid"]
        assert wait_done(svc, doc, uid)["status"] == "done"
    with svc.state.sm() as db:  # as a crash would leave them: one half-done, one cut off too often
        s = db.scalar(select(Study).where(Study.uid == uid))
        s.status, s.attempts = "running", 1
        again = Study(source="upload", status="running", attempts=2, files=[])
        db.add(again)
        db.commit()
        again_id = again.id
    svc2 = make_service(tmp_path / "d2", analysis_max_attempts=2)  # same code path as a restart, on the crashed database:
    svc2.state.worker.sm = svc.state.sm
    svc2.state.worker.data_dir = svc.state.data_dir
    svc2.state.worker.start()
    try:
        assert svc2.state.worker.wait_idle(90)
    finally:
        svc2.state.worker.stop()
    with svc.state.sm() as db:
        s = db.scalar(select(Study).where(Study.uid == uid))
        assert s.status == "done" and s.attempts == 2
        assert len(s.frames) == 1  # analysed again from the start, not twice recorded
        gave_up = db.get(Study, again_id)
        assert gave_up.status == "failed" and "cut off" in gave_up.error


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "livus.cli", "serve", "--port", str(port), "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_healthy(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not start")


def _statuses(data_dir: Path) -> dict[str, str]:
    sm = make_sessionmaker(make_engine(database_url(data_dir, None)))
    with sm() as db:
        return {s.uid: s.status for s in db.scalars(select(Study))}


@pytest.mark.slow
def test_worker_processes_analyse_in_parallel_and_survive_a_kill(tmp_path):
    data_dir = tmp_path / "data"
    env = {**os.environ, "LIVUS_DATA_DIR": str(data_dir), "LIVUS_PASSWORD": "doctor-pass-123"}
    subprocess.run([sys.executable, "-m", "livus.cli", "user", "add", "doc", "--role", "physician"], env=env,
                   check=True, timeout=60, capture_output=True)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(env, port, workers=2)
    try:
        _wait_healthy(url)
        token = httpx.post(f"{url}/api/login", json={"username": "doc", "password": "doctor-pass-123",
                                                     "want_token": True}, timeout=30).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        uids = []
        for i in range(2):
            r = httpx.post(f"{url}/api/studies", headers=auth, timeout=30,
                           files=[("files", (f"s{i}.png", png_bytes(ultrasound_like(seed=i)), "image/png"))])
            assert r.status_code == 202, r.text
            uids.append(r.json()["uid"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # both claimed at once by the two workers
            states = [httpx.get(f"{url}/api/studies/{u}/status", headers=auth, timeout=10).json()["status"] for u in uids]
            if states == ["running", "running"]:
                break
            assert "done" not in states, "finished before both ran at once: cannot check the kill"
            time.sleep(0.1)
        assert states == ["running", "running"], states
        os.killpg(proc.pid, signal.SIGKILL)  # the server and its worker processes, mid-analysis
        proc.wait(20)
        assert set(_statuses(data_dir).values()) == {"running"}  # cut off, not lost
        proc = _serve(env, port, workers=2)
        _wait_healthy(url)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and set(_statuses(data_dir).values()) != {"done"}:
            time.sleep(0.5)
        assert set(_statuses(data_dir).values()) == {"done"}
        token = httpx.post(f"{url}/api/login", json={"username": "doc", "password": "doctor-pass-123",
                                                     "want_token": True}, timeout=30).json()["token"]
        d = httpx.get(f"{url}/api/studies/{uids[0]}", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        assert len(d["frames"]) == 1 and d["reports"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
