"""`livus user …` and `livus serve` from the command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from livus.cli import main


def test_user_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIVUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIVUS_PASSWORD", "first-admin-pass")
    assert main(["user", "add", "chief", "--role", "admin"]) == 0
    assert main(["user", "add", "chief", "--role", "admin"]) == 2  # exists: clean error
    monkeypatch.setenv("LIVUS_PASSWORD", "short")
    assert main(["user", "add", "other", "--role", "physician"]) == 2
    assert main(["user", "unlock", "chief"]) == 0
    assert main(["user", "disable", "nobody"]) == 2
    capsys.readouterr()
    assert main(["user", "list"]) == 0
    out = capsys.readouterr().out
    assert "chief" in out and "admin" in out and "other" not in out
    assert (tmp_path / "data" / "livus.db").is_file()


def test_user_unlock_lifts_the_login_back_off(tmp_path, monkeypatch, capsys):
    """The back-off lives in the database: `livus user unlock` lifts it for a running service too."""
    from livus.service.auth import LoginThrottle
    from livus.service.storage import database_url, make_engine, make_sessionmaker

    monkeypatch.setenv("LIVUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIVUS_PASSWORD", "first-admin-pass")
    assert main(["user", "add", "chief", "--role", "admin"]) == 0
    throttle = LoginThrottle(make_sessionmaker(make_engine(database_url(tmp_path / "data", None))), 1, 100, 600)
    throttle.failed("chief", "203.0.113.1")
    assert throttle.blocked("chief", "203.0.113.1")
    capsys.readouterr()
    assert main(["user", "list"]) == 0 and "locked" in capsys.readouterr().out
    assert main(["user", "unlock", "chief"]) == 0
    assert not throttle.blocked("chief", "203.0.113.1") and not throttle.locked("chief")


def test_service_yaml_maps_senders_and_pulls_to_departments(tmp_path, monkeypatch):
    from livus.service.settings import load_service_config

    monkeypatch.delenv("LIVUS_DATA_DIR", raising=False)
    good = tmp_path / "service.yaml"
    good.write_text("dicom_departments:\n  US_ROOM1: hepatology\n  PACS@10.0.0.9: radiology\n"
                    "pacs_department: radiology\n", encoding="utf-8")
    cfg = load_service_config(good, data_dir=str(tmp_path / "data"))
    assert cfg.dicom_departments == {"US_ROOM1": "hepatology", "PACS@10.0.0.9": "radiology"}
    assert cfg.pacs_department == "radiology" and cfg.dicom_default_department == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text('dicom_departments:\n  US_ROOM1: "hep\\u0000x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="printable"):
        load_service_config(bad, data_dir=str(tmp_path / "data"))
    bad.write_text("dicom_departments: [US_ROOM1]\n", encoding="utf-8")
    with pytest.raises(TypeError, match="mapping"):
        load_service_config(bad, data_dir=str(tmp_path / "data"))


def test_data_dir_inside_the_package_is_refused(monkeypatch):
    import livus

    monkeypatch.setenv("LIVUS_DATA_DIR", os.path.join(os.path.dirname(livus.__file__), "data"))
    with pytest.raises(ValueError, match="inside the livus package"):
        from livus.service.settings import load_service_config

        load_service_config()


@pytest.mark.slow
def test_serve_starts_and_answers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LIVUS_DATA_DIR": str(tmp_path / "data"), "LIVUS_PASSWORD": "first-admin-pass"}
    subprocess.run([sys.executable, "-m", "livus.cli", "user", "add", "chief", "--role", "admin"], env=env, check=True,
                   timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "livus.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{url}/api/studies", timeout=5).status_code == 401
        r = httpx.post(f"{url}/api/login", json={"username": "chief", "password": "first-admin-pass"}, timeout=10)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.slow
def test_serve_speaks_https_with_secure_cookies(tmp_path):
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl (Debian package 'openssl') not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LIVUS_DATA_DIR": str(tmp_path / "data"), "LIVUS_PASSWORD": "first-admin-pass"}
    subprocess.run([sys.executable, "-m", "livus.cli", "user", "add", "chief", "--role", "admin"], env=env, check=True,
                   timeout=60, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "livus.cli", "serve", "--port", str(port), "--ssl-certfile", str(cert),
                             "--ssl-keyfile", str(key)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2, verify=False).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        r = httpx.post(f"{url}/api/login", json={"username": "chief", "password": "first-admin-pass"}, timeout=10,
                       verify=False)
        assert r.status_code == 200
        assert "secure" in r.headers["set-cookie"].lower() and "strict-transport-security" in r.headers
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # no plain HTTP on the TLS port
        assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    finally:
        proc.terminate()
        proc.wait(20)
