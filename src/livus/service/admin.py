"""Command-line administration behind ``livus serve``, ``livus user …`` and ``livus model …``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports stay inside the commands: `livus --help` must stay fast
    from livus.config import ServiceConfig


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve(cfg: ServiceConfig) -> None:
    """Run the web service with uvicorn until interrupted: HTTPS when ``ssl_certfile`` is set
    (then cookies are ``Secure``); everything it writes readable by this account only."""
    import dataclasses

    import uvicorn

    from livus.service.app import create_app

    os.umask(0o077)  # data directory 0700, files 0600 (patient images, database)
    tls = bool(cfg.ssl_certfile)
    if tls and not cfg.ssl_keyfile:
        raise ValueError("ssl_certfile needs ssl_keyfile")
    if tls:
        cfg = dataclasses.replace(cfg, secure_cookies=True)
    if not tls and cfg.host not in LOOPBACK:
        print(f"livus: WARNING: plain HTTP on {cfg.host}: passwords and patient images cross the network "
              "unencrypted. Give --ssl-certfile/--ssl-keyfile, or listen on 127.0.0.1 behind an HTTPS reverse "
              "proxy (README, 'HTTPS').", file=sys.stderr)
    app = create_app(cfg)
    scheme = "https" if tls else "http"
    print(f"livus: serving on {scheme}://{cfg.host}:{cfg.port}  (data: {Path(cfg.data_dir).resolve()})")
    # proxy headers are read by the app itself, from cfg.trusted_proxies only (uvicorn's default would
    # believe X-Forwarded-For from any local process)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info", ws_max_size=8 * 1024 * 1024 + 16,
                proxy_headers=False, ssl_certfile=cfg.ssl_certfile, ssl_keyfile=cfg.ssl_keyfile)


def _cfg(args: argparse.Namespace) -> ServiceConfig:
    from livus.service.settings import load_service_config

    return load_service_config(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))


def _read_password(args: argparse.Namespace) -> str:
    """From stdin (``--password-stdin``), ``$LIVUS_PASSWORD``, or asked twice on the terminal."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    env = os.environ.get("LIVUS_PASSWORD")
    if env:
        return env
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("passwords differ")
    return first


def cmd_serve(args: argparse.Namespace) -> int:
    from livus.service.settings import DATA_DIR_ENV, load_service_config

    cfg = load_service_config(args.config, host=args.host, port=args.port, data_dir=args.data_dir,
                              dicom_port=args.dicom_port, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
                              analysis_workers=args.workers)
    Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
    # the installation's identity (e.g. the DICOM SR Device Observer UID, livus.report.dicom_sr)
    # lives in the data directory, also for the analysis worker processes
    os.environ[DATA_DIR_ENV] = str(Path(cfg.data_dir).resolve())
    serve(cfg)
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from livus.service.auth import backoff_locked, create_user, lift_backoff, set_password
    from livus.service.storage import User, database_url, make_engine, make_sessionmaker

    cfg = _cfg(args)
    data_dir = Path(cfg.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sm = make_sessionmaker(make_engine(database_url(data_dir, cfg.database_url)))
    with sm() as db:
        if args.user_command == "list":
            for u in db.scalars(select(User).order_by(User.username)):
                state = "locked" if backoff_locked(db, u.username) else ("disabled" if not u.active else "active")
                print(f"{u.username:24s} {u.role:11s} {u.language} {state:8s} {u.department}")
            return 0
        if args.user_command == "add":
            create_user(db, args.username, _read_password(args), args.role, args.language, args.department)
            print(f"user {args.username} ({args.role}{', ' + args.department if args.department else ''}) added")
            return 0
        user = db.scalar(select(User).where(User.username == args.username))
        if user is None:
            raise ValueError(f"no user {args.username!r}")
        if args.user_command == "passwd":
            set_password(db, user, _read_password(args))
        elif args.user_command == "unlock":
            user.locked_until, user.failed_logins = None, 0
            lift_backoff(db, user.username)  # a running service sees it at once
        elif args.user_command == "disable":
            user.active = False
        elif args.user_command == "enable":
            user.active = True
        db.commit()
        print(f"user {args.username}: {args.user_command} done")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from livus.monitor.registry import ModelRegistry

    cfg = _cfg(args)
    reg = ModelRegistry(Path(cfg.data_dir) / "models")
    if args.model_command == "list":
        names = [args.name] if getattr(args, "name", None) else reg.models()
        for name in names:
            for v in reg.versions(name):
                mark = "*" if v.active else " "
                print(f"{mark} {name:12s} {v.version:16s} {v.registered_at[:19]}  {', '.join(v.files)}")
        if not names:
            print("no models registered")
        return 0
    if args.model_command == "register":
        metrics = json.loads(Path(args.metrics).read_text(encoding="utf-8")) if args.metrics else {}
        if args.stats_from:
            metrics["input_stats"] = training_input_stats(Path(args.stats_from))
        mv = reg.register(args.name, args.version, args.files, card=args.card, metrics=metrics, activate=args.activate)
        print(f"registered {mv.name} {mv.version}" + (" (active)" if mv.active else ""))
        return 0
    if args.model_command == "activate":
        mv = reg.activate(args.name, args.version)
    else:
        mv = reg.rollback(args.name)
    print(f"{mv.name}: active version is now {mv.version}")
    return 0


def training_input_stats(dataset_dir: Path, max_images: int = 500) -> dict:
    """Reference statistics for drift monitoring from a livus dataset's images."""
    from livus.io.readers import collect_inputs, read_frame
    from livus.monitor.drift import frame_stats, reference_stats

    folder = dataset_dir / "images" if (dataset_dir / "images").is_dir() else dataset_dir
    stats = []
    for p in collect_inputs([folder])[:max_images]:
        try:
            fr = read_frame(p)
        except Exception:  # noqa: BLE001 - unreadable training files do not count
            continue
        stats.append(frame_stats(fr.pixels, fr.metadata))
    return reference_stats(stats)


def add_subparsers(sub: argparse._SubParsersAction) -> None:
    """``serve``, ``user`` and ``model`` sub-commands (called from ``livus.cli``)."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=None, help="data directory (default: $LIVUS_DATA_DIR or ./livus-data)")
        p.add_argument("--config", default=None, help="service YAML (livus.config.ServiceConfig)")

    s = sub.add_parser("serve", help="web service: upload, live mode, DICOM listener, API")
    common(s)
    s.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default 8000)")
    s.add_argument("--dicom-port", type=int, default=None, help="DICOM C-STORE listener port (default: off)")
    s.add_argument("--ssl-certfile", default=None, help="PEM certificate: serve HTTPS (with --ssl-keyfile)")
    s.add_argument("--ssl-keyfile", default=None, help="PEM private key of the certificate")
    s.add_argument("--workers", type=int, default=None, help="studies analysed at once, one process each (default: CPU cores)")
    s.set_defaults(func=cmd_serve)

    u = sub.add_parser("user", help="service accounts")
    usub = u.add_subparsers(dest="user_command", required=True)
    ua = usub.add_parser("add", help="add an account (password from the terminal, --password-stdin or $LIVUS_PASSWORD)")
    ua.add_argument("username")
    ua.add_argument("--role", required=True, choices=["admin", "physician", "researcher"])
    ua.add_argument("--language", default="zh", choices=["zh", "en"])
    ua.add_argument("--department", default="", help="the user sees this department's studies (admins see all)")
    ua.add_argument("--password-stdin", action="store_true")
    common(ua)
    ul = usub.add_parser("list", help="list accounts")
    common(ul)
    for name, helptext in (("passwd", "set a new password"), ("unlock", "lift a lock-out"),
                           ("disable", "disable an account"), ("enable", "enable an account")):
        up = usub.add_parser(name, help=helptext)
        up.add_argument("username")
        up.add_argument("--password-stdin", action="store_true")
        common(up)
    u.set_defaults(func=cmd_user)

    m = sub.add_parser("model", help="model registry: versions, activation, rollback")
    msub = m.add_subparsers(dest="model_command", required=True)
    ml = msub.add_parser("list", help="versions (* = active)")
    ml.add_argument("name", nargs="?")
    common(ml)
    mr = msub.add_parser("register", help="add a version (weights, ONNX, card, metrics)")
    mr.add_argument("name")
    mr.add_argument("version")
    mr.add_argument("files", nargs="+", help="files of this version (e.g. detector.pt model.onnx)")
    mr.add_argument("--card", default=None, help="model card (Markdown file)")
    mr.add_argument("--metrics", default=None, help="metrics JSON file")
    mr.add_argument("--stats-from", default=None, help="training dataset folder: store input statistics for drift checks")
    mr.add_argument("--activate", action="store_true")
    common(mr)
    ma = msub.add_parser("activate", help="make a version the active one")
    ma.add_argument("name")
    ma.add_argument("version")
    common(ma)
    mb = msub.add_parser("rollback", help="go back to the previously active version")
    mb.add_argument("name")
    common(mb)
    m.set_defaults(func=cmd_model)
