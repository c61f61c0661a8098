"""The application factory: routes, signed session cookies, local static files.

The session secret comes from ``ROLLOUT_SECRET_KEY``; without it a random per-process key is used,
which is right for one process only. Several worker processes must sign with one key, or each
rejects the cookies the others issued: ``rollout serve --workers N`` generates one for the run
when the variable is unset, and ``web/asgi.py`` refuses to start a worker without it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine import Clock, SystemClock, make_engine, require_schema, sessions
from service import JobRunner, recover_jobs
from web import accounts, api, api_imports, errors, pages, plan_changes, tokens, uploads
from web.context import HERE, SESSION_TTL, AppState, SecurityHeaders, make_templates

SECRET_ENV = "ROLLOUT_SECRET_KEY"
# What ``rollout serve --workers N`` hands each worker process (read by web/asgi.py).
DB_ENV = "ROLLOUT_WEB_DB"
HTTPS_ONLY_ENV = "ROLLOUT_WEB_HTTPS_ONLY"
NOW_ENV = "ROLLOUT_WEB_NOW"


def _openapi(request: Request) -> Response:
    return JSONResponse(api.schemas.get_schema(routes=request.app.routes))


def _favicon(_request: Request) -> Response:
    """Clients that ask for /favicon.ico without reading the page's <link rel="icon"> get the same icon."""
    return RedirectResponse("/static/favicon.svg", 301)


def routes() -> list[Route | Mount]:
    return [
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/", pages.overview, methods=["GET"]),
        Route("/regions.{kind:str}", pages.regions_file, methods=["GET"]),
        Route("/contractors.{kind:str}", pages.contractors_file, methods=["GET"]),
        Route("/overdue", pages.overdue, methods=["GET"]),
        Route("/overdue.{kind:str}", pages.overdue_file, methods=["GET"]),
        Route("/rework", pages.rework, methods=["GET"]),
        Route("/rework.{kind:str}", pages.rework_file, methods=["GET"]),
        Route("/schools", pages.school_list, methods=["GET"]),
        Route("/schools.{kind:str}", pages.school_list_file, methods=["GET"]),
        Route("/schools/{code}", pages.school, methods=["GET"]),
        Route("/schools/{code}/teachers.{kind:str}", pages.school_teachers_file, methods=["GET"]),
        Route("/schools/{code}/actions/{trigger}", pages.action, methods=["POST"]),
        Route("/schools/{code}/extension/{decision}", pages.extension, methods=["POST"]),
        Route("/schools/{code}/facts", pages.record_fact, methods=["POST"]),
        Route("/schools/{code}/deadline", plan_changes.set_deadline, methods=["POST"]),
        Route("/plan/changes", plan_changes.plan_changes, methods=["GET"]),
        Route("/extensions", pages.extensions, methods=["GET"]),
        Route("/audit", pages.audit, methods=["GET"]),
        Route("/audit.csv", pages.audit_csv, methods=["GET"]),
        Route("/audit.xlsx", pages.audit_xlsx, methods=["GET"]),
        Route("/imports", uploads.form, methods=["GET"]),
        Route("/imports", uploads.upload, methods=["POST"]),
        Route("/imports/{job:int}", uploads.show, methods=["GET"]),
        Route("/imports/{job:int}/confirm", uploads.confirm, methods=["POST"]),
        Route("/imports/{job:int}/retry", uploads.retry, methods=["POST"]),
        Route("/imports/{job:int}/problems.xlsx", uploads.problems, methods=["GET"]),
        Route("/accounts", accounts.accounts, methods=["GET"]),
        Route("/accounts", accounts.add, methods=["POST"]),
        Route("/accounts/bulk", accounts.bulk, methods=["POST"]),
        Route("/accounts/{username}/disable", accounts.disable, methods=["POST"]),
        Route("/accounts/{username}/reset", accounts.reset, methods=["POST"]),
        Route("/tokens", tokens.tokens, methods=["GET"]),
        Route("/tokens", tokens.add, methods=["POST"]),
        Route("/tokens/{name}/revoke", tokens.revoke, methods=["POST"]),
        Route("/account/password", accounts.password_form, methods=["GET"]),
        Route("/account/password", accounts.password, methods=["POST"]),
        Route("/api/me", api.me, methods=["GET"]),
        Route("/api/overview", api.overview, methods=["GET"]),
        Route("/api/overdue", api.overdue, methods=["GET"]),
        Route("/api/schools", api.school_list, methods=["GET"]),
        Route("/api/schools/{code}", api.school, methods=["GET"]),
        Route("/api/schools/{code}/actions/{trigger}", api.action, methods=["POST"]),
        Route("/api/schools/{code}/extension/{decision}", api.extension, methods=["POST"]),
        Route("/api/schools/{code}/facts", api.facts, methods=["GET"]),
        Route("/api/schools/{code}/facts", api.record_fact, methods=["POST"]),
        Route("/api/extensions", api.extensions, methods=["GET"]),
        Route("/api/audit", api.audit, methods=["GET"]),
        Route("/api/imports/{kind}", api_imports.import_kind, methods=["POST"]),
        Route("/api/audit.csv", api.audit_csv, methods=["GET"]),
        Route("/api/audit.xlsx", api.audit_xlsx, methods=["GET"]),
        Route("/api/openapi.json", _openapi, methods=["GET"], include_in_schema=False),
        Route("/favicon.ico", _favicon, methods=["GET"], include_in_schema=False),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(db_url: str, clock: Clock | None = None, *, https_only: bool = False,
               secret_key: str | None = None, upload_dir: Path | None = None) -> Starlette:
    """The dashboard over the database at ``db_url``; ``https_only`` marks the cookie Secure;
    ``upload_dir`` is where uploads are kept (default: service.uploads.upload_dir())."""
    engine = make_engine(db_url, kept_stage=True)  # uploads keep their previewed rows (engine/imports/kept.py)
    require_schema(engine)
    key = secret_key or os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    # Pages and lists are text that compresses ~10× (a province's list, the API's JSON).
    middleware = [Middleware(GZipMiddleware, minimum_size=1000), Middleware(SecurityHeaders), Middleware(SessionMiddleware, secret_key=key, session_cookie="rollout_session",
                             max_age=int(SESSION_TTL.total_seconds()), same_site="strict", https_only=https_only)]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        recover_jobs(state.sessions, state.clock, state.upload_folder())  # jobs a restart cut off
        yield
        state.jobs.shutdown()  # type: ignore[union-attr]  # a running import finishes first
        engine.dispose()  # no pooled connection outlives the server

    handlers = {404: errors.http_error, 405: errors.http_error, 500: errors.server_error}
    app = Starlette(routes=routes(), middleware=middleware, lifespan=lifespan, exception_handlers=handlers)
    state = AppState(sessions(engine), clock or SystemClock(), make_templates(), upload_dir)
    state.jobs = JobRunner(db_url, state.sessions, state.clock, state.upload_folder)
    app.state.rollout = state
    return app
