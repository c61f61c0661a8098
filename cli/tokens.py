"""``rollout tokens add/list/revoke``: service accounts for platforms and their API tokens."""

from __future__ import annotations

import click

from cli.app import App, emit, json_option, pass_app, table
from engine import DEFAULT_TOKEN_DAYS, ROLES, add_token, list_tokens, revoke_tokens, tr


@click.group("tokens")
def tokens() -> None:
    """平台的服务账号与 API 令牌 / service accounts and API tokens for platforms."""


@tokens.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), help="Role of a new service account (like a user's).")
@click.option("--scope", help="Region code of a new service account (like a user's).")
@click.option("--days", default=DEFAULT_TOKEN_DAYS, show_default=True, type=int, help="Days until the token expires.")
@pass_app
def tokens_add(app: App, name: str, role: str | None, scope: str | None, days: int) -> None:
    """签发令牌（只显示这一次）/ issue a token (shown this once only)."""
    with app.transaction() as session:
        token = add_token(session, app.clock, name=name, role=role, scope=scope, days=days)
    click.echo(token)
    click.echo(tr("请立即保存：令牌只显示这一次，系统只保存其摘要。", "Keep it now: the token is shown this once; only its digest is stored."), err=True)


@tokens.command("list")
@json_option
@pass_app
def tokens_list(app: App, as_json: bool) -> None:
    """列出令牌（不含令牌本身）/ list tokens (never the tokens themselves)."""
    with app.transaction() as session:
        rows = [{"name": t.name, "role": t.role, "scope": t.scope, "prefix": t.prefix, "created_at": t.created_at,
                 "expires_at": t.expires_at, "revoked_at": t.revoked_at, "last_used_at": t.last_used_at}
                for t in list_tokens(session)]
    emit(rows, as_json, lambda: table(
        [tr("账号", "Account"), tr("角色", "Role"), tr("范围", "Scope"), tr("令牌开头", "Starts"), tr("到期", "Expires"),
         tr("状态", "State")],
        [[r["name"], r["role"], r["scope"], r["prefix"], str(r["expires_at"])[:10],
          tr("已吊销", "revoked") if r["revoked_at"] else tr("有效", "live")] for r in rows]))


@tokens.command("revoke")
@click.argument("name")
@click.option("--prefix", help="Revoke only the token starting with this (see tokens list).")
@pass_app
def tokens_revoke(app: App, name: str, prefix: str | None) -> None:
    """吊销令牌 / revoke a service account's tokens."""
    with app.transaction() as session:
        count = revoke_tokens(session, app.clock, name, prefix)
    click.echo(tr(f"已吊销 {count} 个令牌", f"revoked {count} token(s)"))


commands = [tokens]
