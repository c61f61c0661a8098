"""The import API for platforms: ``POST /api/imports/{kind}`` with a file or JSON rows.

The same service calls as the 导入数据 pages (preview = the importer's dry run, then the commit),
answered as data. A platform authenticates with a service account's token
(``Authorization: Bearer rlt_…``, ``rollout tokens add``); a signed-in browser session with its
CSRF header works too. A retry never imports twice: the ``Idempotency-Key`` header, or without it
the file's SHA-256, names the import, and a request naming one already made gets the first
answer back (``"replayed": true``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from engine import ImportJob, clean_line, create_job, find_idempotent, tr
from service import (
    DEFAULT_MAPPING,
    UploadError,
    check_mapping,
    check_upload,
    commit_upload,
    preview_upload,
    rows_from_json,
    sha256_of,
    stored_name,
)
from web.context import AppState, Ctx, Upload, json_response
from web.multipart import upload_endpoint

MAX_KEY = 200


def job_json(job: ImportJob, *, dry_run: bool, replayed: bool = False, from_json: bool = False) -> dict[str, Any]:
    """A job as the API returns it; for JSON rows each problem also names its ``index`` in ``rows``."""
    problems = [dict(p) | ({"index": p["row"] - 2} if from_json and p.get("row") else {}) for p in job.problems]
    return {
        "job": job.id, "kind": job.kind, "state": job.state, "dry_run": dry_run, "replayed": replayed,
        "file": job.filename, "sha256": job.sha256, "encoding": job.encoding,
        "header": job.columns[0] if job.columns else None,
        "total": job.total, "inserted": job.inserted, "updated": job.updated, "unchanged": job.unchanged,
        "groups": [{"code": g[0], "inserted": g[1], "updated": g[2], "unchanged": g[3]} for g in job.groups],
        "problems": problems,
    }


def _status(job: ImportJob, created: bool) -> int:
    if job.problems:
        return 422
    return 201 if created and job.state == "imported" else 200


def _sent(ctx: Ctx, state: AppState) -> tuple[Upload, bool]:
    """The file sent, or the JSON rows written as a CSV; and whether it came as JSON."""
    if "json" in ctx.files:
        raw = ctx.files["json"]
        path = state.upload_folder() / stored_name("rows.csv")
        try:
            rows_from_json(raw.path, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        name = clean_line(ctx.request.query_params.get("filename", ""), "", 10**4)[:100] or "rows.json"
        # The CSV is what is stored, previewed, checked again before the commit and audited.
        rows = ctx.files["rows"] = Upload(name, path, path.stat().st_size, sha256_of(path))  # removed unless kept
        return rows, True
    sent = ctx.files.get("file")
    check_upload(sent.filename if sent else "", sent.size if sent else 0)
    assert sent is not None
    return sent, False


@upload_endpoint(api=True, tokens=True)
def import_kind(ctx: Ctx) -> Response:
    """
    summary: Import a file (or JSON rows) of one kind, or only validate it
    description: |
      The same preview and commit as the 导入数据 page, all or nothing. Authenticate with a service
      account's token (`rollout tokens add NAME --role county_office --scope 370323`). Rows of
      schools or regions outside the account's scope are problems, never written.

      ```
      curl -sS -X POST 'https://rollout.example.org/api/imports/progress?dry_run=1' \\
        -H 'Authorization: Bearer rlt_…' -H 'Idempotency-Key: 2026-12-01-nightly' \\
        -F 'file=@进度.csv'
      curl -sS -X POST 'https://rollout.example.org/api/imports/progress' \\
        -H 'Authorization: Bearer rlt_…' -H 'Content-Type: application/json' \\
        -d '{"rows": [{"platform_id": "T1", "name": "张三", "school_code": "3703230001",
             "online_hours": 30, "practice_hours": 28, "points": "1,5,9"}]}'
      ```
    parameters:
      - {name: kind, in: path, required: true, schema: {type: string, enum: [progress, schools, contacts, facts, extensions]}}
      - {name: dry_run, in: query, schema: {type: integer, enum: [0, 1]}, description: "1: validate and count only, write nothing"}
      - {name: mapping, in: query, schema: {type: string}, description: "column mapping by name (default provincial-platform)"}
      - {name: filename, in: query, schema: {type: string}, description: "the name recorded for JSON rows"}
      - {name: Idempotency-Key, in: header, schema: {type: string, maxLength: 200}, description: "names the import; without it, the SHA-256 of the body does"}
      - {name: Authorization, in: header, schema: {type: string}, description: "Bearer rlt_… (a service account's token)"}
    requestBody:
      content:
        multipart/form-data:
          schema: {type: object, properties: {file: {type: string, format: binary}}}
        application/json:
          schema: {type: object, properties: {rows: {type: array, items: {type: object}}}}
    responses:
      200: {description: "Dry run with no problem, or a retry of an import already made (replayed: true)"}
      201: {description: "Imported: counts per school; audited"}
      400: {description: "Not a CSV/XLSX, invalid JSON, unknown mapping"}
      401: {description: "No session and no valid token (unknown, expired, revoked)"}
      403: {description: "The account's role may not import this kind"}
      409: {description: "The Idempotency-Key was used before with another file"}
      413: {description: "Over 100 MB"}
      422: {description: "Problems in the rows: [{row, column, field, message, index (JSON rows)}]; nothing written"}
      429: {description: "More than 60 requests this minute with this token"}
    """
    state: AppState = ctx.request.app.state.rollout
    kind = ctx.request.path_params["kind"]
    dry_run = ctx.request.query_params.get("dry_run", "0") in ("1", "true")
    mapping = ctx.request.query_params.get("mapping") or DEFAULT_MAPPING
    check_mapping(mapping)
    sent, from_json = _sent(ctx, state)
    header_key = ctx.request.headers.get("idempotency-key", "").strip()
    if len(header_key) > MAX_KEY:
        raise UploadError(tr(f"Idempotency-Key 最长 {MAX_KEY} 个字符", f"Idempotency-Key is at most {MAX_KEY} characters"))
    key = None if dry_run else (f"key:{header_key}" if header_key else f"sha256:{kind}:{sent.sha256}")
    if key is not None:
        earlier = find_idempotent(ctx.db, ctx.user, key)
        if earlier is not None:
            if earlier.sha256 != sent.sha256:
                return json_response({"error": tr("这个 Idempotency-Key 已用于另一个文件", "this Idempotency-Key was used with another file")}, 409)
            return json_response(job_json(earlier, dry_run=False, replayed=True, from_json=from_json),
                                 422 if earlier.problems else 200)
    job = create_job(ctx.db, ctx.clock, ctx.user, kind=kind, mapping=mapping, filename=sent.filename,
                     stored_name=sent.path.name, sha256=sent.sha256, size=sent.size, idempotency_key=key)
    sent.keep = True
    preview_upload(ctx.db, ctx.clock, ctx.user, job, sent.path.parent)
    if not dry_run and not job.problems:
        commit_upload(ctx.db, ctx.clock, ctx.user, job, sent.path.parent)
    return json_response(job_json(job, dry_run=dry_run, from_json=from_json), _status(job, not dry_run))
