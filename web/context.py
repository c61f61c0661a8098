"""How every request is handled: language, database transaction, signed-in user, CSRF check, errors.

Handlers are plain synchronous functions ``(Ctx) -> Response`` run in a worker thread, each inside
one database transaction (an action and its audit event commit together or not at all). Wrapping
them here means no route can forget the sign-in, session-expiry, CSRF, body-size and
query-parameter checks, and ``SecurityHeaders`` puts the same security headers on every response.

Sessions are held server-side (``engine.accounts``): the signed cookie carries only a random
token, so logout, a password change or a disabled account ends the session for every copy of the
cookie, and a replayed cookie is just a stranger.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import (
    LANGUAGES,
    Clock,
    DatabaseUnavailable,
    Forbidden,
    NotFound,
    RolloutError,
    StaleStateError,
    Throttled,
    TokenRefused,
    User,
    database_error,
    is_school_user,
    manages_accounts,
    remember_reads,
    role_title,
    session_user,
    set_language,
    token_user,
    tr,
    transaction,
    upload_kinds,
)
from engine.audit import LOCAL_TZ
from service import JobRunner, UploadTooLarge, upload_dir

SESSION_TTL = timedelta(hours=8)
LANG_COOKIE = "rollout_lang"
HERE = Path(__file__).resolve().parent
MAX_BODY = 64 * 1024  # bytes of a form or JSON body: a 2,000-character reason is ~6 KB in UTF-8
# Query parameters every page and API endpoint shares, checked before any handler runs so that
# page=10**23 or until=9999-12-31 is a 400 with a message, never a 500 from the database or datetime.
INT_PARAMS = {"page": (1, 1_000_000), "min_days": (0, 36_500)}
DATE_PARAMS = ("since", "until")
DATE_RANGE = (date(1970, 1, 1), date(2099, 12, 31))
SECURITY_HEADERS = {
    # No inline script or style anywhere: the pages load /static only.
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@dataclass
class AppState:
    sessions: sessionmaker[Session]
    clock: Clock
    templates: Jinja2Templates
    uploads: Path | None = None  # the upload folder; None: service.uploads.upload_dir()
    jobs: JobRunner | None = None  # the background worker of big uploads (create_app starts it)

    def upload_folder(self) -> Path:
        if self.uploads is None:
            self.uploads = upload_dir()
        return self.uploads


@dataclass
class Upload:
    """A file part of a multipart POST, already on disk in the upload folder with its SHA-256.
    Deleted after the handler unless the handler sets ``keep`` (it recorded a job for it)."""

    filename: str
    path: Path
    size: int
    sha256: str
    keep: bool = False


@dataclass
class Ctx:
    request: Request
    db: Session
    clock: Clock
    user: User  # for public handlers (login) a placeholder is never read
    form: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)
    # Run once the request's transaction has committed (handing a job to a background thread).
    after_commit: list[Callable[[], object]] = field(default_factory=list)

    @property
    def session(self) -> dict[str, Any]:
        return self.request.session

    def render(self, name: str, status_code: int = 200, **context: Any) -> Response:
        state: AppState = self.request.app.state.rollout
        flash = self.session.pop("flash", None)
        base = {"user": getattr(self, "user", None), "csrf": csrf_token(self.request), "flash": flash,
                "path": self.request.url.path}
        return state.templates.TemplateResponse(self.request, name, base | context, status_code=status_code)


class NotSignedIn(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""


class MustChangePassword(Exception):
    """The account's password was reset by an office: nothing but changing it until it is."""


# What an account that must change its password may still reach.
PASSWORD_PATHS = ("/account/password", "/logout")


class BadRequest(RolloutError):
    """A query parameter outside what the pages accept (400, with the reason)."""


class SecurityHeaders:
    """Every response gets the headers above; every response but the static files also gets
    ``Cache-Control: no-store``, since pages, the API and exports hold schools' and people's data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = not str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode("latin-1").lower() not in SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if private:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def check_query(request: Request) -> None:
    """Refuse the shared query parameters when they are not plain numbers or dates in range."""
    q = request.query_params
    for name, (low, high) in INT_PARAMS.items():
        value = q.get(name)
        if value and not (value.isascii() and value.isdigit() and low <= int(value) <= high):
            raise BadRequest(tr(f"参数 {name} 应为 {low} 到 {high} 之间的整数：{value[:40]}",
                                f"{name} must be a whole number from {low} to {high}: {value[:40]}"))
    for name in DATE_PARAMS:
        value = q.get(name)
        if not value:
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
        if day is None or not DATE_RANGE[0] <= day <= DATE_RANGE[1]:
            raise BadRequest(tr(f"参数 {name} 应为 {DATE_RANGE[0]} 到 {DATE_RANGE[1]} 之间的日期（YYYY-MM-DD）：{value[:40]}",
                                f"{name} must be a date (YYYY-MM-DD) from {DATE_RANGE[0]} to {DATE_RANGE[1]}: {value[:40]}"))


def client_address(request: Request) -> str:
    """The address sign-in attempts are throttled by (behind a proxy: uvicorn's --forwarded-allow-ips)."""
    return request.client.host if request.client else ""


@functools.cache
def make_templates() -> Jinja2Templates:
    """One environment for the process, as notifications/rendering.py keeps one: Jinja keeps each
    compiled template in it, so a second app in the process (the upload worker's, each test's)
    does not compile the pages again (0.2 s a test). Its globals are the same for every app."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.globals["tr"] = tr
    env.globals["role_title"] = role_title
    env.globals["upload_kinds"] = upload_kinds  # the 导入数据 link, by the one rule in engine.access
    env.globals["local_tz"] = ZoneInfo(LOCAL_TZ)  # times officials read, as the audit page shows them
    env.globals["is_school_user"] = is_school_user  # the 计划变更记录 link: offices and supervisors
    env.globals["manages_accounts"] = manages_accounts  # the 账号管理 link, by engine.account_admin
    return Jinja2Templates(env=env)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def _check_csrf(request: Request, form: dict[str, str], api: bool) -> None:
    sent = request.headers.get("x-csrf-token", "") if api else form.get("csrf", "")
    expected = request.session.get("csrf")
    if not expected or not secrets.compare_digest(str(expected), sent):
        raise Forbidden(tr("表单已失效（CSRF 校验失败），请刷新页面后重试", "form expired (CSRF check failed): reload and try again"))


def _current_user(request: Request, db: Session, clock: Clock) -> User:
    token = request.session.get("sid")
    if not isinstance(token, str) or not token:
        raise NotSignedIn
    user = session_user(db, clock, token, SESSION_TTL)
    if user is None:  # ended (logout, new password, disabled), expired, or never issued by us
        request.session.clear()
        raise NotSignedIn
    if user.must_change_password and request.url.path not in PASSWORD_PATHS:
        raise MustChangePassword
    return user


def language(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in LANGUAGES else "zh"


def _status(exc: RolloutError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, StaleStateError):
        return 409
    if isinstance(exc, DatabaseUnavailable):
        return 503
    if isinstance(exc, TokenRefused):
        return 401
    if isinstance(exc, Throttled):
        return 429
    if isinstance(exc, UploadTooLarge):
        return 413
    return 400


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def json_response(data: Any, status_code: int = 200) -> Response:
    text = json.dumps(data, ensure_ascii=False, default=json_default)
    return Response(text, status_code=status_code, media_type="application/json")


Handler = Callable[[Ctx], Response]


def _error_response(request: Request, state: AppState, exc: RolloutError, *, api: bool,
                    back: Callable[[Request], str] | None) -> Response:
    status = _status(exc)
    if api:
        return json_response({"error": str(exc)}, status)
    if back is not None and status in (400, 409):
        request.session["flash"] = {"kind": "error", "text": str(exc)}
        return RedirectResponse(back(request), 303)
    return state.templates.TemplateResponse(request, "error.html", {
        "user": None, "nav": True, "csrf": "", "flash": None, "path": request.url.path, "message": str(exc),
        "status": status}, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None when it is longer than MAX_BODY (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what Request.body() caches: request.form() parses it from here
    return body


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if the request has one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _token_user_id(state: AppState, token: str) -> int:
    """Checked and counted in a transaction of its own, committed before the request's: a request
    that then fails still counts against the token's throttle."""
    with transaction(state.sessions) as db:
        return token_user(db, state.clock, token).id


def _run(handler: Handler, request: Request, form: dict[str, str], body: dict[str, Any], *, api: bool,
         public: bool, back: Callable[[Request], str] | None, files: dict[str, Upload] | None = None,
         tokens: bool = False) -> Response:
    lang = language(request)
    set_language(lang)
    state: AppState = request.app.state.rollout
    try:
        check_query(request)
        token = bearer_token(request) if tokens else None
        token_id = _token_user_id(state, token) if token else None
        with transaction(state.sessions) as db:
            if request.method in ("GET", "HEAD"):  # a page or an export reads: each lookup once
                remember_reads(db)
            user = db.get(User, token_id) if token_id else None if public else _current_user(request, db, state.clock)
            if request.method == "POST" and token_id is None:  # a bearer token is no cookie: nothing to forge
                _check_csrf(request, form, api)
            ctx = Ctx(request, db, state.clock, user, form, body, files or {})  # type: ignore[arg-type]
            response = handler(ctx)
        for task in ctx.after_commit:
            task()
    except DBAPIError as exc:
        unavailable = database_error(exc)
        if unavailable is None:
            raise
        response = _error_response(request, state, unavailable, api=api, back=None)
    except MustChangePassword:
        message = tr("请先修改密码", "change your password first")
        response = JSONResponse({"error": message}, 403) if api else RedirectResponse("/account/password", 303)
    except NotSignedIn:
        if api:
            response = JSONResponse({"error": tr("未登录或会话已过期", "not signed in or session expired")}, 401)
        else:
            response = RedirectResponse("/login", 303)
    except RolloutError as exc:
        response = _error_response(request, state, exc, api=api, back=back)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response


def endpoint(*, api: bool = False, public: bool = False,
             back: Callable[[Request], str] | None = None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Turn a handler into a Starlette endpoint with every check applied (uploads: web/multipart.py)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def asgi(request: Request) -> Response:
            set_language(language(request))
            form: dict[str, str] = {}
            body: dict[str, Any] = {}
            if request.method == "POST":
                raw = await _read_body(request)
                if raw is None:
                    message = tr(f"请求内容太大（最多 {MAX_BODY // 1024} KB）", f"request too large (at most {MAX_BODY // 1024} KB)")
                    return JSONResponse({"error": message}, 413) if api else Response(message, 413, media_type="text/plain")
                if api:
                    try:
                        loaded = json.loads(raw) if raw else {}
                    except (ValueError, RecursionError):
                        return JSONResponse({"error": tr("不是有效的 JSON", "invalid JSON")}, 400)
                    if not isinstance(loaded, dict):
                        return JSONResponse({"error": tr("请求内容应为 JSON 对象", "a JSON object is expected")}, 400)
                    body = loaded
                else:
                    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
            return await run_in_threadpool(_run, handler, request, form, body, api=api, public=public, back=back)

        return asgi

    return wrap

