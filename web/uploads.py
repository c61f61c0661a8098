"""The 导入数据 pages: upload a file, see its preview, confirm it, download its problems.

Thin over ``service.uploads`` (which runs the engine's importers) and ``engine.uploads`` (the job
records, who sees them); who may upload what is ``engine.access.upload_kinds``/``require_upload``.
"""

from __future__ import annotations

import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine import (
    Forbidden,
    ImportJob,
    claim_commit,
    create_job,
    job_for,
    latest_import,
    list_jobs,
    mark_interrupted,
    reset_for_retry,
    tr,
    upload_kinds,
)
from engine.imports import estimate_rows
from service import (
    BACKGROUND_BYTES,
    DEFAULT_MAPPING,
    KIND_TITLES,
    UploadError,
    check_mapping,
    check_upload,
    commit_upload,
    field_title,
    hold,
    mapping_choices,
    preview_upload,
    problems_xlsx,
    progress_of,
    sha256_of,
    worker_gone,
)
from web.context import AppState, Ctx, endpoint
from web.data import _int
from web.multipart import upload_endpoint

PAGE = 50  # problems or schools per page of the preview


def _state(ctx: Ctx) -> AppState:
    state: AppState = ctx.request.app.state.rollout
    return state


def _titles() -> dict[str, str]:
    return {k: tr(*v) for k, v in KIND_TITLES.items()}


@endpoint()
def form(ctx: Ctx) -> Response:
    kinds = upload_kinds(ctx.user)
    if not kinds:
        raise Forbidden(tr("您的角色不能导入数据", "your role may not import data"))
    return ctx.render("uploads.html", kinds=kinds, mappings=sorted(mapping_choices()), default=DEFAULT_MAPPING,
                      jobs=list_jobs(ctx.db, ctx.user), titles=_titles(), as_of=latest_import(ctx.db, ctx.user))


def _back_to_form(_request: Request) -> str:
    return "/imports"


@upload_endpoint(back=_back_to_form)
def upload(ctx: Ctx) -> Response:
    sent = ctx.files.get("file")
    mapping = ctx.form.get("mapping") or DEFAULT_MAPPING
    check_upload(sent.filename if sent else "", sent.size if sent else 0)
    check_mapping(mapping)
    assert sent is not None  # check_upload refused an empty or missing file
    job = create_job(ctx.db, ctx.clock, ctx.user, kind=ctx.form.get("kind", ""), mapping=mapping,
                     filename=sent.filename, stored_name=sent.path.name, sha256=sent.sha256, size=sent.size)
    sent.keep = True
    _read(ctx, job, sent.path.parent)
    return RedirectResponse(f"/imports/{job.id}", 303)


def _read(ctx: Ctx, job: ImportJob, folder: Path) -> None:
    """Preview a stored file: a big one on the worker (the page shows how far it got), else now."""
    if job.size > BACKGROUND_BYTES:
        job.state, job.rows_expected, job.started_at = "reading", estimate_rows(folder / job.stored_name), ctx.clock.now()
        _later(ctx, job, commit=False)
    else:
        preview_upload(ctx.db, ctx.clock, ctx.user, job, folder)


def _later(ctx: Ctx, job: ImportJob, *, commit: bool) -> None:
    runner, user_id, job_id = _state(ctx).jobs, ctx.user.id, job.id
    assert runner is not None
    hold(_state(ctx).upload_folder(), job)  # owned by this process from now: see worker_gone
    ctx.after_commit.append(lambda: runner.submit(job_id, user_id, commit=commit))


def _job_id(ctx: Ctx) -> int:
    return int(ctx.request.path_params["job"])


@endpoint()
def show(ctx: Ctx) -> Response:
    job = job_for(ctx.db, ctx.user, _job_id(ctx))
    if worker_gone(_state(ctx).upload_folder(), job):  # the server restarted mid-file
        mark_interrupted(job, ctx.clock)
    q = ctx.request.query_params
    page = max(1, _int(q.get("page"), 1))
    gpage = max(1, _int(q.get("gpage"), 1))
    problems = job.problems[(page - 1) * PAGE:page * PAGE]
    groups = job.groups[(gpage - 1) * PAGE:gpage * PAGE]
    return ctx.render("upload.html", job=job, running=_running(job, _state(ctx).upload_folder()), problems=problems, page=page, more=page * PAGE < len(job.problems),
                      groups=groups, gpage=gpage, gmore=gpage * PAGE < len(job.groups), titles=_titles(),
                      field_title=lambda f: field_title(job.kind, f),
                      header=(job.columns[0] if job.columns else {}))


def _running(job: ImportJob, folder: Path) -> dict[str, object] | None:
    """Rows read, share and time left of a job on the worker thread (None when it is not running)."""
    if job.state not in ("reading", "committing"):
        return None
    seen = progress_of(folder, job)
    rows = seen.rows if seen else job.rows_read
    expected = job.rows_expected or 0
    share = min(99, int(100 * rows / expected)) if expected else None
    left = None
    if seen and rows and expected > rows:
        left = int((time.time() - seen.started) / rows * (expected - rows))
    return {"rows": rows, "expected": expected, "share": share, "left": left}


def _back_to_job(request: Request) -> str:
    return f"/imports/{request.path_params['job']}"


@endpoint(back=_back_to_job)
def confirm(ctx: Ctx) -> Response:
    job = job_for(ctx.db, ctx.user, _job_id(ctx))
    if job.size > BACKGROUND_BYTES:
        claim_commit(ctx.db, job)
        job.started_at = ctx.clock.now()
        _later(ctx, job, commit=True)
        return RedirectResponse(f"/imports/{job.id}", 303)
    commit_upload(ctx.db, ctx.clock, ctx.user, job, _state(ctx).upload_folder())
    if job.state == "imported":
        text = tr(f"已导入 {job.filename}：新增 {job.inserted}，更新 {job.updated}，未变 {job.unchanged}",
                  f"imported {job.filename}: {job.inserted} new, {job.updated} updated, {job.unchanged} unchanged")
        ctx.session["flash"] = {"kind": "ok", "text": text}
    else:
        ctx.session["flash"] = {"kind": "error", "text": tr("导入时发现问题，未写入任何数据", "the import found problems: nothing was written")}
    return RedirectResponse(f"/imports/{job.id}", 303)


@endpoint(back=_back_to_job)
def retry(ctx: Ctx) -> Response:
    """Read a failed job's stored file again from the start (an interrupted import, mostly)."""
    job = job_for(ctx.db, ctx.user, _job_id(ctx))
    folder = _state(ctx).upload_folder()
    path = folder / job.stored_name
    if not path.is_file() or sha256_of(path) != job.sha256:
        raise UploadError(tr("已存的文件不在了或已改变：请重新上传", "the stored file is gone or changed: upload it again"))
    reset_for_retry(job)
    _read(ctx, job, folder)
    return RedirectResponse(f"/imports/{job.id}", 303)


@endpoint()
def problems(ctx: Ctx) -> Response:
    job = job_for(ctx.db, ctx.user, _job_id(ctx))
    body = problems_xlsx(job, _state(ctx).upload_folder())
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="problems-{job.id}.xlsx"'})
