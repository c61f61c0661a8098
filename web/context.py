"""How every request is handled: language, database transaction, signed-in user, CSRF check, errors.

Handlers are plain synchronous functions ``(Ctx) -> Response`` run in a worker thread, each inside
one database transaction (an action and its audit event commit together or not at all). Wrapping
them here means no route can forget the sign-in, session-expiry or CSRF checks.
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

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from engine import (
    LANGUAGES,
    Clock,
    Forbidden,
    NotFound,
    RolloutError,
    StaleStateError,
    User,
    role_title,
    set_language,
    tr,
    transaction,
)

SESSION_TTL = timedelta(hours=8)
LANG_COOKIE = "rollout_lang"
HERE = Path(__file__).resolve().parent


@dataclass
class AppState:
    sessions: sessionmaker[Session]
    clock: Clock
    templates: Jinja2Templates


@dataclass
class Ctx:
    request: Request
    db: Session
    clock: Clock
    user: User  # for public handlers (login) a placeholder is never read
    form: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

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


def make_templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.globals["tr"] = tr
    env.globals["role_title"] = role_title
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
    uid = request.session.get("uid")
    at = request.session.get("at")
    if uid is None or at is None:
        raise NotSignedIn
    if clock.now() - datetime.fromisoformat(at) > SESSION_TTL:
        request.session.clear()
        raise NotSignedIn
    user = db.get(User, uid)
    if user is None or not user.active:
        request.session.clear()
        raise NotSignedIn
    return user


def _language(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in LANGUAGES else "zh"


def _status(exc: RolloutError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, StaleStateError):
        return 409
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


def _run(handler: Handler, request: Request, form: dict[str, str], body: dict[str, Any], *, api: bool,
         public: bool, back: Callable[[Request], str] | None) -> Response:
    lang = _language(request)
    set_language(lang)
    state: AppState = request.app.state.rollout
    try:
        with transaction(state.sessions) as db:
            user = None if public else _current_user(request, db, state.clock)
            if request.method == "POST":
                _check_csrf(request, form, api)
            ctx = Ctx(request, db, state.clock, user, form, body)  # type: ignore[arg-type]
            response = handler(ctx)
    except NotSignedIn:
        if api:
            response = JSONResponse({"error": tr("未登录或会话已过期", "not signed in or session expired")}, 401)
        else:
            response = RedirectResponse("/login", 303)
    except RolloutError as exc:
        status = _status(exc)
        if api:
            response = json_response({"error": str(exc)}, status)
        elif back is not None and status in (400, 409):
            request.session["flash"] = {"kind": "error", "text": str(exc)}
            response = RedirectResponse(back(request), 303)
        else:
            templates = state.templates
            response = templates.TemplateResponse(request, "error.html", {
                "user": None, "csrf": "", "flash": None, "path": request.url.path, "message": str(exc),
                "status": status}, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response


def endpoint(*, api: bool = False, public: bool = False,
             back: Callable[[Request], str] | None = None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Turn a handler into a Starlette endpoint with every check applied."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def asgi(request: Request) -> Response:
            form: dict[str, str] = {}
            body: dict[str, Any] = {}
            if request.method == "POST":
                if api:
                    raw = await request.body()
                    try:
                        loaded = json.loads(raw) if raw else {}
                    except ValueError:
                        return JSONResponse({"error": "invalid JSON"}, 400)
                    if not isinstance(loaded, dict):
                        return JSONResponse({"error": "a JSON object is expected"}, 400)
                    body = loaded
                else:
                    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
            return await run_in_threadpool(_run, handler, request, form, body, api=api, public=public, back=back)

        return asgi

    return wrap
