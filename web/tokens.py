"""API 令牌: an office's service accounts for its platforms — issue a token (shown once), list, revoke.

Thin over ``engine.token_admin`` (scoped like accounts: ``may_grant``). The token is shown in the
response that issued it, never put in the (signed, not encrypted) session cookie.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine import ROLES, office_add_token, office_revoke_token, office_tokens, tr
from web.context import Ctx, endpoint
from web.data import _int


def _back(_request: Request) -> str:
    return "/tokens"


def _page(ctx: Ctx, **extra: Any) -> Response:
    return ctx.render("tokens.html", tokens=office_tokens(ctx.db, ctx.user), roles=ROLES, now=ctx.clock.now(), **extra)


@endpoint()
def tokens(ctx: Ctx) -> Response:
    return _page(ctx)


@endpoint(back=_back)
def add(ctx: Ctx) -> Response:
    f = ctx.form
    name = f.get("name", "").strip()
    token = office_add_token(ctx.db, ctx.clock, ctx.user, name=name, role=f.get("role", ""),
                             scope=f.get("scope", "").strip(), days=_int(f.get("days"), 365))
    return _page(ctx, issued={"name": name, "token": token})


@endpoint(back=_back)
def revoke(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    office_revoke_token(ctx.db, ctx.clock, ctx.user, name, ctx.form.get("prefix", ""))
    ctx.session["flash"] = {"kind": "ok", "text": tr(f"已吊销 {name} 的令牌", f"revoked the token of {name}")}
    return RedirectResponse("/tokens", 303)
