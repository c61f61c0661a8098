"""账号管理: an office's accounts — add, disable, reset a password, add many from a workbook — and
the page where a user changes their own password (required after an office reset it).

Thin over ``engine.account_admin``, which holds the rule that no office grants a role or a scope
above its own. Temporary passwords are shown in the response that made them, never put in the
(signed, not encrypted) session cookie; a bulk add answers with a workbook of them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine import (
    ROLES,
    SheetColumn,
    bulk_add_users,
    change_own_password,
    managed_users,
    office_add_user,
    office_disable_user,
    office_reset_password,
    tr,
    xlsx_bytes,
)
from web.context import Ctx, client_address, endpoint
from web.multipart import upload_endpoint


def _back(_request: Request) -> str:
    return "/accounts"


def _page(ctx: Ctx, **extra: Any) -> Response:
    return ctx.render("accounts.html", users=managed_users(ctx.db, ctx.user), roles=ROLES, **extra)


@endpoint()
def accounts(ctx: Ctx) -> Response:
    return _page(ctx)


@endpoint(back=_back)
def add(ctx: Ctx) -> Response:
    f = ctx.form
    user, password = office_add_user(ctx.db, ctx.clock, ctx.user, username=f.get("username", ""),
                                     role=f.get("role", ""), scope=f.get("scope", "").strip(),
                                     display_name=f.get("display_name") or None,
                                     contractor=f.get("contractor") or None)
    return _page(ctx, issued={"username": user.username, "password": password})


@endpoint(back=_back)
def disable(ctx: Ctx) -> Response:
    user = office_disable_user(ctx.db, ctx.clock, ctx.user, ctx.request.path_params["username"])
    ctx.session["flash"] = {"kind": "ok", "text": tr(f"已停用 {user.username}", f"disabled {user.username}")}
    return RedirectResponse("/accounts", 303)


@endpoint(back=_back)
def reset(ctx: Ctx) -> Response:
    user, password = office_reset_password(ctx.db, ctx.clock, ctx.user, ctx.request.path_params["username"])
    return _page(ctx, issued={"username": user.username, "password": password})


@upload_endpoint(back=_back)
def bulk(ctx: Ctx) -> Response:
    sent = ctx.files.get("file")
    if sent is None or sent.size == 0 or not sent.filename.lower().endswith((".xlsx", ".csv")):
        return _page(ctx, error=tr("请上传 XLSX 或 CSV 文件（用户名、姓名、角色、范围）",
                                   "upload an XLSX or CSV file (username, display name, role, scope)"))
    added = bulk_add_users(ctx.db, ctx.clock, ctx.user, sent.path, sent.filename)
    body = xlsx_bytes(tr("新账号", "New accounts"), [
        SheetColumn(tr("用户名", "Username"), 20), SheetColumn(tr("姓名", "Name"), 20), SheetColumn(tr("角色", "Role"), 16),
        SheetColumn(tr("范围", "Scope"), 12, "@"), SheetColumn(tr("临时密码", "Temporary password"), 24)],
        [[a.username, a.display_name, a.role, a.scope, a.password] for a in added],
        title=[tr(f"新账号 {len(added)} 个：首次登录须修改密码", f"{len(added)} new accounts: each must change the password at first sign-in")])
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="new-accounts.xlsx"'})


@endpoint()
def password_form(ctx: Ctx) -> Response:
    return ctx.render("password.html", must=ctx.user.must_change_password, error="")


@endpoint()
def password(ctx: Ctx) -> Response:
    f = ctx.form
    if f.get("new", "") != f.get("again", ""):
        return ctx.render("password.html", status_code=400, must=ctx.user.must_change_password,
                          error=tr("两次输入的新密码不一致", "the two new passwords differ"))
    change_own_password(ctx.db, ctx.clock, ctx.user, f.get("current", ""), f.get("new", ""),
                        client=client_address(ctx.request))
    ctx.session.clear()  # every session ended with the old password, this one too
    return RedirectResponse("/login", 303)
