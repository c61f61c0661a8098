"""Uploads: a multipart form with one file, streamed to the upload folder under its own body cap.

Every other POST is capped at 64 KB (``web.context.MAX_BODY``); an upload may be up to
``service.uploads.MAX_UPLOAD`` (100 MB) plus its form's few fields. The body is counted as it
arrives and refused with 413 the moment it passes the cap (or at once, by its Content-Length);
Starlette spools the file part past 1 MB to a temporary file, and it is copied into the upload
folder while its SHA-256 is computed, so a 60 MB export never sits in memory. Without a session
nothing is written to disk at all. Afterwards the handler runs like any other (``web.context``:
sign-in, CSRF from the form, one transaction), and the stored file is deleted unless the handler
recorded a job for it (``Upload.keep``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Message, Receive

from engine import set_language, tr
from service import MAX_UPLOAD, stored_name
from web.context import MAX_BODY, AppState, Handler, Upload, _run, bearer_token, language

UPLOAD_SLACK = 64 * 1024  # the form's other fields and the multipart boundaries


class _TooLarge(Exception):
    pass


def _capped(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def inner() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return message

    return inner


async def _read_json(request: Request, folder: Path) -> dict[str, Upload]:
    """A JSON body (an API client's rows), streamed into ``folder`` as ``files["json"]``."""
    path = folder / stored_name("rows.json")
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("wb") as out:
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {"json": Upload("rows.json", path, size, digest.hexdigest())}


async def _read_upload(request: Request, folder: Path, api: bool) -> tuple[dict[str, str], dict[str, Upload]] | None:
    """A multipart form with at most one file, the file streamed into ``folder`` (hashed as it is
    copied), or for the API a JSON body; None when the body is over the upload cap (nothing of
    it is kept)."""
    limit = MAX_UPLOAD + UPLOAD_SLACK
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    capped = Request(request.scope, _capped(request.receive, limit))
    files: dict[str, Upload] = {}
    if api and request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
        try:
            return {}, await _read_json(capped, folder)
        except _TooLarge:
            return None
    try:
        async with capped.form(max_files=1, max_fields=20, max_part_size=MAX_BODY) as data:
            form = {k: v for k, v in data.items() if isinstance(v, str)}
            for name, value in data.items():
                if isinstance(value, StarletteUpload):
                    original = value.filename or "upload"
                    path = folder / stored_name(original)
                    digest, size = hashlib.sha256(), 0
                    with path.open("wb") as out:
                        while chunk := await value.read(1 << 20):
                            digest.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
                    files[name] = Upload(original, path, size, digest.hexdigest())
    except _TooLarge:
        for upload in files.values():
            upload.path.unlink(missing_ok=True)
        return None
    return form, files


def _too_large(api: bool) -> Response:
    mb = MAX_UPLOAD // 1024 // 1024
    message = tr(f"文件太大（最多 {mb} MB）", f"file too large (at most {mb} MB)")
    return JSONResponse({"error": message}, 413) if api else Response(message, 413, media_type="text/plain")


async def _upload(handler: Handler, request: Request, *, api: bool, back: Callable[[Request], str] | None,
                  tokens: bool) -> Response:
    """An upload: nobody without a session (or, where tokens are taken, a bearer token) gets as
    far as writing to disk; the file is removed again unless the handler kept it."""
    if not request.session.get("sid") and not (tokens and bearer_token(request)):
        if api:
            return JSONResponse({"error": tr("未登录或会话已过期", "not signed in or session expired")}, 401)
        return RedirectResponse("/login", 303)
    state: AppState = request.app.state.rollout
    read = await _read_upload(request, state.upload_folder(), api)
    if read is None:
        return _too_large(api)
    form, files = read
    try:
        return await run_in_threadpool(_run, handler, request, form, {}, api=api, public=False, back=back, files=files,
                                       tokens=tokens)
    finally:
        for item in files.values():
            if not item.keep:
                item.path.unlink(missing_ok=True)


def upload_endpoint(*, api: bool = False, tokens: bool = False,
                    back: Callable[[Request], str] | None = None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Like ``web.context.endpoint`` for a POST that carries one file (``ctx.files``); ``tokens``
    also accepts a service account's ``Authorization: Bearer`` token (engine/tokens.py)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def asgi(request: Request) -> Response:
            set_language(language(request))
            return await _upload(handler, request, api=api, back=back, tokens=tokens)

        return asgi

    return wrap
