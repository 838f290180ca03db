"""The livus web service: JSON API under ``/api/``, the web page, live WebSocket, health check.

``create_app(cfg)`` builds a FastAPI app around one :class:`ServiceState` (database, model
registry, analysis worker, monitor, login rate limiter, DICOM listener). Every ``/api/``
route except ``/api/login`` needs a session (HttpOnly cookie or ``Authorization: Bearer``);
state-changing cookie requests must carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import cv2
import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from livus.config import ServiceConfig
from livus.monitor.registry import ModelRegistry, RegistryError
from livus.service import audit
from livus.service.analysis import AnalysisWorker, ModelProvider
from livus.service.auth import (
    AuthError,
    LoginThrottle,
    RateLimiter,
    authenticate,
    create_user,
    end_session,
    forwarded_client,
    session_for_token,
    set_password,
    start_session,
)
from livus.service.case_view import (
    case_frames,
    case_view,
    frame_warnings,
    page_labels,
    result_assessability_json,
    study_assessability,
)
from livus.service.monitoring import Monitor, active_alerts, add_outcome, import_outcomes_csv
from livus.service.overlay_language import overlay_in_language
from livus.service.privacy import (
    deidentify_panels,
    deidentify_result,
    deidentify_study,
    keep_mask,
)
from livus.service.uploads import (
    FileProbe,
    UploadRefused,
    check_limits,
    probe_file,
    resolve_identity,
    safe_display_name,
    storage_name,
)
from livus.service.storage import (
    ROLES,
    Alert,
    FrameRecord,
    LoginSession,
    Outcome,
    Study,
    StudyFile,
    User,
    database_url,
    make_engine,
    private_file,
    make_sessionmaker,
)
from livus.types import FrameResult

log = logging.getLogger("livus.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "livus_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FILES_PER_UPLOAD = 200


# ----------------------------------------------------------------------------- state


@dataclass
class ServiceState:
    cfg: ServiceConfig
    data_dir: Path
    sm: sessionmaker
    registry: ModelRegistry
    models: ModelProvider
    worker: AnalysisWorker
    monitor: Monitor
    login_limiter: RateLimiter
    login_throttle: LoginThrottle
    pseudonym_key: bytes
    extras: dict[str, Any] = field(default_factory=dict)  # dicom listener, ...


def _secret(path: Path) -> bytes:
    """A random key kept in the data directory (created once, owner-only)."""
    if not path.is_file():
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def build_state(cfg: ServiceConfig) -> ServiceState:
    data_dir = Path(cfg.data_dir).resolve()
    (data_dir / "studies").mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # patient images: the service's account only (files are made 0600)
    shutil.rmtree(data_dir / "incoming", ignore_errors=True)  # uploads cut off by the last stop
    engine = make_engine(database_url(data_dir, cfg.database_url))
    for db_file in data_dir.glob("livus.db*"):
        db_file.chmod(0o600)
    sm = make_sessionmaker(engine)
    registry = ModelRegistry(data_dir / "models")
    models = ModelProvider(registry, cfg.analysis_config)
    monitor = Monitor(cfg, registry)

    def after_study(_sid: int) -> None:
        with sm() as db:
            monitor.check(db)

    worker = AnalysisWorker(sm, data_dir, models, cfg.language, on_done=after_study, workers=cfg.analysis_workers,
                            in_process=cfg.analysis_in_process, max_attempts=cfg.analysis_max_attempts)
    return ServiceState(cfg, data_dir, sm, registry, models, worker, monitor,
                        RateLimiter(cfg.login_rate_limit, cfg.login_rate_window_s),
                        LoginThrottle(sm, cfg.lockout_failures, cfg.lockout_ip_failures, cfg.lockout_minutes * 60),
                        _secret(data_dir / ".pseudonym-key"))


# ----------------------------------------------------------------------------- middleware


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413 (by Content-Length, or while streaming)."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _plain_response(send, 413, "request body too large")
                    return
        seen = 0
        exceeded = False

        async def limited_receive() -> dict:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    exceeded = True  # the app sees a client that went away; its answer is replaced
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: dict) -> None:
            if not exceeded:
                await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:  # noqa: BLE001 - parsing a cut-off body may fail in any way
            if not exceeded:
                raise
        if exceeded:
            await _plain_response(send, 413, "request body too large")


async def _plain_response(send: Callable, status: int, text: str) -> None:
    body = ('{"detail": "%s"}' % text).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; "
     b"style-src 'self'; script-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (and ``no-store`` to API answers)."""

    def __init__(self, app: Callable, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", []))
                present = {k.lower() for k, _ in headers}  # a route may set a stricter/looser CSP itself
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if is_api:
                    headers.append((b"cache-control", b"no-store"))
                if self.hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, send_with_headers)


# ----------------------------------------------------------------------------- helpers


def unique_stem(name: str, taken: set[str]) -> str:
    """``name``, or ``name`` with ``_2``, ``_3``... before the suffix when its stem is ``taken``
    (overlays and cases are named by the stem: one per file of a study)."""
    stem, suffix, n = Path(name).stem, Path(name).suffix, 1
    while (stem if n == 1 else f"{stem}_{n}") in taken:
        n += 1
    return name if n == 1 else f"{stem}_{n}{suffix}"


def inside(base: Path, rel: str) -> Path | None:
    """``base / rel`` if it stays inside ``base`` and exists, else ``None``."""
    if not rel:
        return None
    p = (base / rel).resolve()
    if base not in p.parents or not p.is_file():
        return None
    return p


def png_response(img: np.ndarray) -> Response:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise HTTPException(500, "cannot encode image")
    return Response(buf.tobytes(), media_type="image/png")


def user_dict(u: User, locked: bool = False) -> dict[str, Any]:
    """An account as the API shows it; ``locked``: some address is in login back-off for it."""
    return {"username": u.username, "role": u.role, "department": u.department, "language": u.language,
            "active": u.active, "locked": locked}


# ----------------------------------------------------------------------------- request bodies


class LoginBody(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)
    want_token: bool = False


class NewUserBody(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)
    role: str = Field(max_length=32)
    language: str = Field(default="zh", max_length=8)
    department: str = Field(default="", max_length=64)


class LanguageBody(BaseModel):
    language: str = Field(max_length=8)


class PasswordBody(BaseModel):
    old_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class VersionBody(BaseModel):
    version: str = Field(max_length=128)


class OutcomeBody(BaseModel):
    frame_id: int
    lesion_id: int
    malignant: bool
    method: str = Field(max_length=32)


class PacsBody(BaseModel):
    patient_id: str = Field(default="", max_length=64)
    study_instance_uid: str = Field(default="", max_length=64)


# ----------------------------------------------------------------------------- app


@dataclass
class Auth:
    user: User
    session: LoginSession
    via_cookie: bool


def create_app(cfg: ServiceConfig, start_background: bool = True) -> FastAPI:
    """The service app; ``start_background`` runs the analysis worker (and DICOM listener)."""
    state = build_state(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if start_background:
            state.worker.start()
            if cfg.dicom_port:
                from livus.service.dicom_listener import DicomListener

                listener = DicomListener.from_config(state, cfg)
                listener.start()
                state.extras["dicom"] = listener
            if cfg.send_results != "off":  # SR/SEG back to the PACS (livus.service.results_out)
                from livus.service.results_out import ResultSender

                state.extras["sender"] = ResultSender(state, cfg).start()
        try:
            yield
        finally:
            for name in ("sender", "dicom"):
                if name in state.extras:
                    state.extras.pop(name).stop()
            state.worker.stop()

    app = FastAPI(title="livus", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.livus = state
    app.add_middleware(SecurityHeadersMiddleware, hsts=cfg.secure_cookies)
    app.add_middleware(BodyLimitMiddleware, limit=int(cfg.max_upload_mb * 1024 * 1024))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("unexpected error: %s", exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    def get_db() -> Any:
        with state.sm() as db:
            yield db

    def current(request: Request, db: Session = Depends(get_db)) -> Auth:
        token = request.cookies.get(SESSION_COOKIE)
        via_cookie = token is not None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token, via_cookie = header[7:].strip(), False
        rec = session_for_token(db, token)
        if rec is None:
            raise HTTPException(401, "login required")
        if via_cookie and request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token", "")
            if not secrets.compare_digest(sent.encode(), rec.csrf_token.encode()):
                raise HTTPException(403, "missing or wrong CSRF token")
        return Auth(rec.user, rec, via_cookie)

    def role(*allowed: str) -> Callable[..., Auth]:
        def check(auth: Auth = Depends(current)) -> Auth:
            if auth.user.role not in allowed:
                raise HTTPException(403, f"needs role {' or '.join(allowed)}")
            return auth
        return check

    def client_address(request: Request) -> str:
        """The client's address (``X-Forwarded-For`` believed only from ``cfg.trusted_proxies``)."""
        peer = request.client.host if request.client else "unknown"
        return forwarded_client(peer, request.headers.get("x-forwarded-for"), cfg.trusted_proxies)

    anyone = role(*ROLES)
    clinical = role("admin", "physician")
    admin = role("admin")

    def is_researcher(auth: Auth) -> bool:
        return auth.user.role == "researcher"

    # ------------------------------------------------------------------ pages, health
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/fonts/cjk.otf")
    def cjk_font() -> FileResponse:
        """The CJK font bundled for reports, so the page shows Chinese without system fonts."""
        from livus.report.fonts import cjk_font_path

        return FileResponse(cjk_font_path(), media_type="font/otf", headers={"cache-control": "public, max-age=604800"})

    @app.get("/", response_class=HTMLResponse)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    # ------------------------------------------------------------------ login
    @app.post("/api/login")
    def login(body: LoginBody, request: Request, response: Response, db: Session = Depends(get_db)) -> dict[str, Any]:
        ip = client_address(request)
        if not state.login_limiter.allow(ip):
            audit.record(db, None, "login-limited", body.username[:64], "too many attempts", ip)
            raise HTTPException(429, "too many login attempts; wait a minute")
        name = body.username[:64]
        refused = HTTPException(401, "wrong user name or password (after repeated failures, logins from this "
                                     "address wait a while)")  # one answer: it never tells whether a name exists
        if state.login_throttle.blocked(name, ip):
            audit.record(db, None, "login-blocked", name, "back-off after failed logins", ip)
            raise refused
        try:
            user = authenticate(db, body.username, body.password)
        except AuthError as exc:
            state.login_throttle.failed(name, ip)
            audit.record(db, None, "login-failed", name, exc.reason, ip)
            raise refused from None
        state.login_throttle.succeeded(name, ip)
        new = start_session(db, user, cfg.session_hours)
        response.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="strict", secure=cfg.secure_cookies,
                            max_age=int(cfg.session_hours * 3600), path="/")
        audit.record(db, user, "login", user.username, "", ip)
        out: dict[str, Any] = {"user": user_dict(user), "csrf_token": new.csrf_token}
        if body.want_token:
            out["token"] = new.token
        return out

    @app.post("/api/logout")
    def logout(request: Request, response: Response, auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> dict[str, bool]:
        token = request.cookies.get(SESSION_COOKIE) if auth.via_cookie else request.headers.get("authorization", "")[7:].strip()
        end_session(db, token)
        response.delete_cookie(SESSION_COOKIE, path="/")
        audit.record(db, auth.user, "logout", auth.user.username, "", client_address(request))
        return {"ok": True}

    @app.get("/api/session")
    def session_info(auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> dict[str, Any]:
        return {"user": user_dict(auth.user), "csrf_token": auth.session.csrf_token, "alerts": active_alerts(db)}

    @app.get("/api/labels")
    def labels(auth: Auth = Depends(anyone)) -> dict[str, Any]:
        """Display names in Chinese and English: lesion features (the page's lesion table), the
        page's texts from the report's tables and the assessability reasons."""
        from livus.report.i18n import FEATURE_LABELS

        return {"features": FEATURE_LABELS, **page_labels()}

    @app.put("/api/me/language")
    def set_language(body: LanguageBody, auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> dict[str, Any]:
        if body.language not in ("zh", "en"):
            raise HTTPException(422, "language must be zh or en")
        user = db.get(User, auth.user.id)
        user.language = body.language
        db.commit()
        return user_dict(user)

    @app.post("/api/me/password")
    def change_password(body: PasswordBody, request: Request, auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> dict[str, bool]:
        user = db.get(User, auth.user.id)
        try:
            authenticate(db, user.username, body.old_password)
            set_password(db, user, body.new_password)
        except AuthError:
            raise HTTPException(403, "wrong password") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        audit.record(db, user, "password", user.username, "", client_address(request))
        return {"ok": True}

    # ------------------------------------------------------------------ users
    @app.get("/api/users")
    def list_users(auth: Auth = Depends(admin), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
        return [user_dict(u, state.login_throttle.locked(u.username)) for u in db.scalars(select(User).order_by(User.username))]

    @app.post("/api/users", status_code=201)
    def add_user(body: NewUserBody, request: Request, auth: Auth = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
        try:
            user = create_user(db, body.username, body.password, body.role, body.language, body.department)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        audit.record(db, auth.user, "user-add", user.username, f"role={user.role}", client_address(request))
        return user_dict(user)

    @app.post("/api/users/{username}/unlock")
    def unlock_user(username: str, request: Request, auth: Auth = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
        user = db.scalar(select(User).where(User.username == username[:64]))
        if user is None:
            raise HTTPException(404, "no such user")
        user.locked_until = None
        user.failed_logins = 0
        db.commit()
        state.login_throttle.unlock(user.username)
        audit.record(db, auth.user, "user-unlock", user.username, "", client_address(request))
        return user_dict(user)

    @app.get("/api/audit")
    def audit_log(limit: int = 200, user: str | None = None, action: str | None = None,
                  auth: Auth = Depends(admin), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
        return audit.list_events(db, limit, user, action)

    # ------------------------------------------------------------------ studies
    def study_summary(s: Study, auth: Auth, n_frames: int = 0, n_lesions: int = 0) -> dict[str, Any]:
        d = {
            "uid": s.uid, "source": s.source, "description": s.description, "patient_id": s.patient_id,
            "patient_name": s.patient_name, "study_instance_uid": s.study_instance_uid, "status": s.status,
            "error": s.error, "created_at": s.created_at.isoformat(), "n_frames": n_frames, "n_lesions": n_lesions,
        }
        return deidentify_study(d, state.pseudonym_key) if is_researcher(auth) else d

    def visible(stmt: Any, auth: Auth) -> Any:
        """``stmt`` limited to the studies ``auth`` may see: an admin all, everyone else their
        department's (users and studies without a department form one department)."""
        return stmt if auth.user.role == "admin" else stmt.where(Study.department == auth.user.department)

    def get_study(db: Session, uid: str, auth: Auth) -> Study:
        """The study ``uid`` if ``auth`` may see it; 404 otherwise (its existence is not revealed)."""
        s = db.scalar(visible(select(Study).where(Study.uid == uid[:64]), auth))
        if s is None:
            raise HTTPException(404, "no such study")
        return s

    def get_frame(db: Session, frame_uid: str, auth: Auth) -> tuple[FrameRecord, Study]:
        """A frame by its random public id, if ``auth`` may see its study (else 404)."""
        row = db.execute(visible(select(FrameRecord, Study).join(Study, FrameRecord.study_id == Study.id)
                                 .where(FrameRecord.uid == frame_uid[:64]), auth)).first()
        if row is None:
            raise HTTPException(404, "no such frame")
        return row[0], row[1]

    rules_cache: dict[tuple[str | None, float], Any] = {}  # (path, mtime) → CaseRules (~80 ms to load)

    def case_views(case_json: dict[str, Any], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each case of a study worded in both page languages (:mod:`livus.service.case_view`),
        with the department's rules and LI-RADS tables; ``results``: the study's frame results."""
        import yaml

        from livus.infer.case import CaseRules, load_case_rules
        from livus.infer.lirads_table import cached_lirads_table

        analyze_cfg = state.models.analysis_cfg().analyze
        path = analyze_cfg.case_rules_path
        key = (path, Path(path).stat().st_mtime if path and Path(path).is_file() else 0.0)
        if key not in rules_cache:
            rules_cache.clear()
            try:
                rules_cache[key] = load_case_rules(path)
            except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:  # reasons shown as stored
                log.warning("case rules %s unreadable (%s): case reasons shown as analysed", path, exc)
                rules_cache[key] = CaseRules([])
        rules, table = rules_cache[key], cached_lirads_table(analyze_cfg.lirads_table_path)
        cases = case_json.get("cases") or []
        return [case_view(c, rules, table, case_frames(c, len(cases), results)) for c in cases]

    def file_names(s: Study) -> list[str]:
        return [f.original_name for f in s.files]

    @app.get("/api/studies")
    def list_studies(limit: int = 100, offset: int = 0, q: str = "", auth: Auth = Depends(anyone),
                     db: Session = Depends(get_db)) -> list[dict[str, Any]]:
        stmt = visible(select(Study), auth).order_by(Study.id.desc()).limit(max(1, min(limit, 500))).offset(max(0, offset))
        if q and not is_researcher(auth):
            like = f"%{q[:100]}%"
            stmt = stmt.where(Study.description.like(like) | Study.patient_id.like(like) | Study.patient_name.like(like))
        studies = db.scalars(stmt).all()
        counts = dict(db.execute(select(FrameRecord.study_id, func.count()).group_by(FrameRecord.study_id)).all())
        lesions = dict(db.execute(select(FrameRecord.study_id, func.sum(FrameRecord.n_lesions)).group_by(FrameRecord.study_id)).all())
        return [{**study_summary(s, auth, counts.get(s.id, 0), int(lesions.get(s.id) or 0)),
                 "assessability": study_assessability(s.case_json)} for s in studies]

    @app.post("/api/studies", status_code=202)
    def upload(request: Request, files: list[UploadFile] = File(...), description: str = Form("", max_length=500),
               patient_id: str = Form("", max_length=128), patient_name: str = Form("", max_length=256),
               auth: Auth = Depends(clinical), db: Session = Depends(get_db)) -> dict[str, Any]:
        """Store the files (each in its own numbered folder under its cleaned name), check them
        from their headers (size limits, one patient) and queue the study. Refused uploads
        leave nothing behind."""
        if not files:
            raise HTTPException(422, "no files")
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise HTTPException(413, f"at most {MAX_FILES_PER_UPLOAD} files per upload")
        staging = state.data_dir / "incoming" / secrets.token_hex(8)
        try:
            stored: list[tuple[str, Path, FileProbe]] = []
            for i, up in enumerate(files):
                display = safe_display_name(up.filename)
                rel = Path(f"{i:03d}") / unique_stem(storage_name(display), {r.stem for _, r, _ in stored})
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                with open(private_file(staging / rel), "wb") as fh:
                    shutil.copyfileobj(up.file, fh, 1 << 20)
                probe = probe_file(staging / rel)
                check_limits(display, probe, cfg.max_frame_pixels, cfg.max_frames)
                stored.append((display, rel, probe))
            who = resolve_identity([(n, p) for n, _, p in stored], patient_id, patient_name, description)
        except UploadRefused as exc:
            shutil.rmtree(staging, ignore_errors=True)
            audit.record(db, auth.user, "upload-refused", "", exc.message[:500], client_address(request))
            raise HTTPException(exc.status, exc.message) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        study = Study(source="upload", description=who.description, patient_id=who.patient_id,
                      patient_name=who.patient_name, study_instance_uid=who.study_instance_uid,
                      created_by=auth.user.id, department=auth.user.department, status="queued")
        db.add(study)
        db.flush()
        folder = state.data_dir / "studies" / study.uid / "files"
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(folder)
        for display, rel, _probe in stored:
            path = Path("studies") / study.uid / "files" / rel
            db.add(StudyFile(study_id=study.id, original_name=display, stored_path=str(path),
                             size_bytes=(state.data_dir / path).stat().st_size))
        db.commit()
        names = [d for d, _, _ in stored]
        audit.record(db, auth.user, "upload", study.uid, f"{len(names)} file(s): {', '.join(names)[:500]}", client_address(request))
        state.worker.submit(study.id)
        return study_summary(study, auth)

    def frame_dict(fr: FrameRecord, files: dict[int, StudyFile], auth: Auth, outcomes: list[Outcome]) -> dict[str, Any]:
        result = fr.result
        if is_researcher(auth):
            result = deidentify_result(result, state.pseudonym_key, [f.original_name for f in files.values()])
        f = files.get(fr.file_id) if fr.file_id else None
        return {
            "id": fr.id, "frame_index": fr.frame_index, "width_px": fr.width_px, "height_px": fr.height_px,
            "file": (result.get("source") if is_researcher(auth) else (f.original_name if f else "")),
            "model_name": fr.model_name, "model_version": fr.model_version, "result": result,
            "assessability": result_assessability_json(result), "warnings_text": frame_warnings(result),
            "image_url": f"/api/frames/{fr.uid}/image.png",
            "overlay_url": f"/api/frames/{fr.uid}/overlay.png" if fr.overlay_path else None,
            "outcomes": [{"lesion_id": o.lesion_id, "malignant": o.malignant, "method": o.method} for o in outcomes],
        }

    @app.get("/api/studies/{uid}/status")
    def study_status(uid: str, auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> dict[str, Any]:
        """The study's state only (the page polls it while the analysis runs; not audited)."""
        s = get_study(db, uid, auth)
        return {"uid": s.uid, "status": s.status}

    @app.get("/api/studies/{uid}")
    def study_detail(uid: str, request: Request, auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> dict[str, Any]:
        s = get_study(db, uid, auth)
        frames = db.scalars(select(FrameRecord).where(FrameRecord.study_id == s.id).order_by(FrameRecord.id)).all()
        files = {f.id: f for f in s.files}
        outcomes: dict[int, list[Outcome]] = {}
        if frames:
            for o in db.scalars(select(Outcome).where(Outcome.frame_id.in_([f.id for f in frames]))):
                outcomes.setdefault(o.frame_id, []).append(o)
        d = study_summary(s, auth, len(frames), sum(f.n_lesions for f in frames))
        d["frames"] = [frame_dict(f, files, auth, outcomes.get(f.id, [])) for f in frames]
        d["files"] = [{"name": (f"file-{i + 1}" if is_researcher(auth) else f.original_name), "size_bytes": f.size_bytes,
                       "error": "" if is_researcher(auth) else f.error} for i, f in enumerate(s.files)]
        d["case"] = None if is_researcher(auth) else s.case_json
        d["case_views"] = None if is_researcher(auth) or not s.case_json else case_views(s.case_json, [f.result for f in frames])
        d["reports"] = [] if is_researcher(auth) else [
            {"kind": r.kind, "url": f"/api/studies/{s.uid}/report.{r.kind}"} for r in s.reports]
        audit.record(db, auth.user, "view", s.uid, "study", client_address(request))
        return d

    @app.get("/api/studies/{uid}/report.{kind}")
    def study_report(uid: str, kind: str, request: Request, auth: Auth = Depends(clinical), db: Session = Depends(get_db)) -> FileResponse:
        s = get_study(db, uid, auth)
        rep = next((r for r in s.reports if r.kind == kind), None)
        path = inside(state.data_dir, rep.path) if rep else None
        if path is None:
            raise HTTPException(404, "no such report")
        audit.record(db, auth.user, "export", s.uid, f"report.{kind}", client_address(request))
        media = {"pdf": "application/pdf", "sr": "application/dicom"}.get(kind, "text/html")
        # the report is a self-contained document: inline styles and data: images, no scripts
        return FileResponse(path, media_type=media, filename=f"livus-report-{s.uid}.{'dcm' if kind == 'sr' else kind}",
                            content_disposition_type="attachment" if kind == "sr" else "inline",
                            headers={"content-security-policy": REPORT_CSP})

    @app.get("/api/export/results.json")
    def export_results(request: Request, auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> JSONResponse:
        """All results (de-identified for researchers)."""
        out = []
        for s in db.scalars(visible(select(Study), auth).order_by(Study.id)):
            frames = db.scalars(select(FrameRecord).where(FrameRecord.study_id == s.id)).all()
            item = study_summary(s, auth, len(frames))
            item["results"] = [deidentify_result(f.result, state.pseudonym_key, file_names(s)) if is_researcher(auth)
                               else f.result for f in frames]
            out.append(item)
        audit.record(db, auth.user, "export", "all-results", f"{len(out)} studies", client_address(request))
        return JSONResponse(out, headers={"content-disposition": "attachment; filename=livus-results.json"})

    def load_frame_pixels(fr: FrameRecord, db: Session) -> np.ndarray:
        from livus.io.readers import read_frames

        f = db.get(StudyFile, fr.file_id) if fr.file_id else None
        path = inside(state.data_dir, f.stored_path) if f else None
        if path is None:
            raise HTTPException(404, "image not available")
        try:
            frames = list(read_frames(path, max_frames=fr.frame_index + 1))
        except Exception:  # noqa: BLE001 - unreadable source: the result stays, the image does not
            raise HTTPException(404, "image not readable") from None
        if not frames:
            raise HTTPException(404, "image not available")
        return frames[-1].pixels

    def researcher_keep_mask(fr: Any, study: Any, pixels: np.ndarray) -> np.ndarray:
        """:func:`keep_mask` of a frame (OCR: seconds), computed once and kept beside the study
        (``deid/<frame uid>.png``, 0/1) so the image and the overlay views share it."""
        cache = state.data_dir / "studies" / study.uid / "deid" / f"{fr.uid}.png"
        if cache.is_file():
            keep = cv2.imread(str(cache), cv2.IMREAD_GRAYSCALE)
            if keep is not None and keep.shape == pixels.shape[:2]:
                return keep
        keep = keep_mask(pixels, fr.result.get("fan_polygon_px"))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(cache), keep)
        return keep

    @app.get("/api/frames/{frame_uid}/image.png")
    def frame_image(frame_uid: str, request: Request, auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> Response:
        fr, study = get_frame(db, frame_uid, auth)
        img = load_frame_pixels(fr, db)
        if is_researcher(auth):
            keep = researcher_keep_mask(fr, study, img)
            img = img * (keep[..., None] if img.ndim == 3 else keep)
        audit.record(db, auth.user, "view-image", study.uid, f"frame {fr.uid} #{fr.frame_index}", client_address(request))
        return png_response(img)

    def overlay_in(fr: Any, study: Any, stored: Path, lang: str | None, db: Session) -> Path:
        """The stored overlay, or (``lang``: zh/en) the overlay re-drawn in that language
        (:mod:`livus.service.overlay_language`), cached beside the study; the stored one when the
        original frame is gone or does not fit its result."""
        if lang not in ("zh", "en"):
            return stored
        cached = state.data_dir / "studies" / study.uid / "overlays" / lang / f"{fr.uid}.png"
        if cached.is_file():
            return cached
        bgr = cv2.imread(str(stored), cv2.IMREAD_COLOR)
        try:
            pixels = load_frame_pixels(fr, db)
            rgb = overlay_in_language(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), pixels, FrameResult.from_json_dict(fr.result), lang)
        except (HTTPException, ValueError, cv2.error):  # no original, or a layout that does not fit: as drawn
            return stored
        cached.parent.mkdir(parents=True, exist_ok=True)
        _, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        with open(private_file(cached), "wb") as fh:
            fh.write(png.tobytes())
        return cached

    @app.get("/api/frames/{frame_uid}/overlay.png")
    def frame_overlay(frame_uid: str, request: Request, lang: str | None = None, auth: Auth = Depends(anyone),
                      db: Session = Depends(get_db)) -> Response:
        """A frame's overlay; ``lang`` (zh/en): in that language (the viewer's), else as analysed."""
        fr, study = get_frame(db, frame_uid, auth)
        path = inside(state.data_dir, fr.overlay_path)
        if path is None:
            raise HTTPException(404, "no overlay")
        path = overlay_in(fr, study, path, lang, db)
        audit.record(db, auth.user, "view-image", study.uid, f"overlay {fr.uid} #{fr.frame_index}", client_address(request))
        if not is_researcher(auth):
            return FileResponse(path, media_type="image/png")
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise HTTPException(404, "no overlay")
        try:  # the mask comes from the original image: livus' own labels inside the fan stay
            keep = researcher_keep_mask(fr, study, load_frame_pixels(fr, db))
        except HTTPException:  # original gone: its text cannot be verified, so nothing is shown
            keep = np.zeros((fr.height_px, fr.width_px), np.uint8)
        return png_response(deidentify_panels(img, keep))

    # ------------------------------------------------------------------ models, monitoring
    @app.get("/api/models")
    def list_models(auth: Auth = Depends(anyone)) -> dict[str, Any]:
        return {name: {"active": (state.registry.version_key(name)),
                       "history": state.registry.history(name),
                       "versions": [v.to_json_dict() for v in state.registry.versions(name)]}
                for name in state.registry.models()}

    @app.get("/api/models/{name}/{version}/card")
    def model_card(name: str, version: str, auth: Auth = Depends(anyone)) -> Response:
        """The version's model card (Markdown, shown as plain text)."""
        try:
            mv = state.registry.get(name, version)
        except RegistryError as exc:
            raise HTTPException(404, str(exc)) from None
        card = mv.path / "MODEL_CARD.md"
        if not card.is_file():
            raise HTTPException(404, "this version has no model card")
        return Response(card.read_text(encoding="utf-8", errors="replace"), media_type="text/plain; charset=utf-8")

    @app.post("/api/models/{name}/activate")
    def activate_model(name: str, body: VersionBody, request: Request, auth: Auth = Depends(admin),
                       db: Session = Depends(get_db)) -> dict[str, Any]:
        try:
            mv = state.registry.activate(name, body.version)
        except RegistryError as exc:
            raise HTTPException(404, str(exc)) from None
        audit.record(db, auth.user, "model-activate", f"{name}:{mv.version}", "", client_address(request))
        return mv.to_json_dict()

    @app.post("/api/models/{name}/rollback")
    def rollback_model(name: str, request: Request, auth: Auth = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
        try:
            mv = state.registry.rollback(name)
        except RegistryError as exc:
            raise HTTPException(409, str(exc)) from None
        audit.record(db, auth.user, "model-rollback", f"{name}:{mv.version}", "", client_address(request))
        return mv.to_json_dict()

    @app.get("/api/monitor")
    def monitor_status(auth: Auth = Depends(anyone), db: Session = Depends(get_db)) -> dict[str, Any]:
        return state.monitor.status(db)

    @app.post("/api/outcomes", status_code=201)
    def confirm_outcome(body: OutcomeBody, request: Request, auth: Auth = Depends(clinical), db: Session = Depends(get_db)) -> dict[str, Any]:
        if db.scalar(visible(select(FrameRecord.id).join(Study, FrameRecord.study_id == Study.id)
                             .where(FrameRecord.id == body.frame_id), auth)) is None:
            raise HTTPException(422, f"no frame {body.frame_id}")
        try:
            oc = add_outcome(db, auth.user, body.frame_id, body.lesion_id, body.malignant, body.method)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        audit.record(db, auth.user, "outcome", f"frame {body.frame_id} lesion {body.lesion_id}",
                     f"malignant={body.malignant} method={body.method}", client_address(request))
        alerts = state.monitor.check(db)
        return {"id": oc.id, "alerts": [a.message for a in alerts]}

    @app.post("/api/outcomes/import")
    def import_outcomes(request: Request, file: UploadFile = File(...), auth: Auth = Depends(clinical),
                        db: Session = Depends(get_db)) -> dict[str, Any]:
        raw = file.file.read(5 * 1024 * 1024 + 1)
        if len(raw) > 5 * 1024 * 1024:
            raise HTTPException(413, "CSV larger than 5 MB")
        try:
            text = raw.decode("utf-8-sig")
            out = import_outcomes_csv(db, auth.user, text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPException(422, f"cannot import: {exc}") from None
        audit.record(db, auth.user, "outcome-import", safe_display_name(file.filename), f"{out['added']} added",
                     client_address(request))
        out["alerts"] = [a.message for a in state.monitor.check(db)]
        return out

    @app.post("/api/alerts/{alert_id}/dismiss")
    def dismiss_alert(alert_id: int, request: Request, auth: Auth = Depends(admin), db: Session = Depends(get_db)) -> dict[str, bool]:
        a = db.get(Alert, alert_id)
        if a is None:
            raise HTTPException(404, "no such alert")
        a.active = False
        db.commit()
        audit.record(db, auth.user, "alert-dismiss", str(alert_id), a.message[:200], client_address(request))
        return {"ok": True}

    # ------------------------------------------------------------------ PACS
    @app.post("/api/pacs/retrieve", status_code=202)
    def pacs_retrieve(body: PacsBody, request: Request, auth: Auth = Depends(clinical), db: Session = Depends(get_db)) -> dict[str, Any]:
        from livus.service.pacs import PacsError, import_retrieved, retrieve_client

        if not (cfg.pacs_host or cfg.dicomweb_url):
            raise HTTPException(409, "no PACS configured (pacs_host or dicomweb_url)")
        if not (body.patient_id or body.study_instance_uid):
            raise HTTPException(422, "give patient_id or study_instance_uid")
        try:
            client = retrieve_client(cfg)
            uids = import_retrieved(state, client, body.patient_id, body.study_instance_uid, auth.user)
        except PacsError as exc:
            raise HTTPException(502, str(exc)) from None
        audit.record(db, auth.user, "pacs-retrieve", body.study_instance_uid or body.patient_id, f"{len(uids)} studies",
                     client_address(request))
        return {"studies": uids}

    # ------------------------------------------------------------------ live
    from livus.service.live import register_live

    register_live(app, state, lambda db, token: session_for_token(db, token))
    from livus.service.dicom_routes import register_dicom_routes

    register_dicom_routes(app, state, clinical, get_db, get_study)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory livus.service.app:app_from_env`` ($LIVUS_DATA_DIR)."""
    from livus.service.settings import load_service_config

    return create_app(load_service_config())
