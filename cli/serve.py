"""``rollout serve`` (the web dashboard under uvicorn) and ``rollout users`` (its accounts)."""

from __future__ import annotations

import sys

import click

from cli.app import App, emit, json_option, pass_app, table
from engine import ROLES, add_user, disable_user, list_users, set_password, tr


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Worker processes; they sign sessions with one key (ROLLOUT_SECRET_KEY, else one per start).")
@click.option("--https-only", is_flag=True, help="Mark the session cookie Secure (behind HTTPS).")
@pass_app
def serve(app: App, host: str, port: int, workers: int, https_only: bool) -> None:
    """网页看板 / serve the web dashboard."""
    import uvicorn

    from web import create_app

    app.engine  # noqa: B018 — fail here with 'run rollout init' rather than on the first request
    if workers > 1:
        import os
        import secrets

        from engine import FixedClock
        from web import DB_ENV, HTTPS_ONLY_ENV, NOW_ENV, SECRET_ENV

        # Each worker process builds its own app (web/asgi.py) from this environment. Without one
        # shared key each would sign sessions with its own random key, and a user signed in by one
        # worker would be sent back to the login form whenever another one answered.
        if not os.environ.get(SECRET_ENV):
            os.environ[SECRET_ENV] = secrets.token_urlsafe(32)
            click.echo(tr(f"未设置 {SECRET_ENV}：本次启动的各工作进程共用一个随机密钥，重启后需重新登录",
                          f"{SECRET_ENV} is not set: the workers share a random key for this run; "
                          "users sign in again after a restart"), err=True)
        os.environ[DB_ENV] = app.db_url
        os.environ[HTTPS_ONLY_ENV] = "1" if https_only else ""
        # --now holds for every worker, as it does for a single process.
        os.environ[NOW_ENV] = app.clock.now().isoformat() if isinstance(app.clock, FixedClock) else ""
        uvicorn.run("web.asgi:app", host=host, port=port, workers=workers)
        return
    uvicorn.run(create_app(app.db_url, app.clock, https_only=https_only), host=host, port=port)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt(tr("密码", "Password"), hide_input=True, confirmation_prompt=True))


@click.group("users")
def users() -> None:
    """网页用户 / web dashboard accounts."""


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--scope", "scope", required=True, help="Region code (offices, supervisors) or school code (school_admin).")
@click.option("--name", "display_name", default=None, help="Display name.")
@click.option("--contractor", default=None, help="承训单位 (role contractor): sees the schools assigned to it in the scope.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_app
def users_add(app: App, username: str, role: str, scope: str, display_name: str | None, contractor: str | None,
              password_stdin: bool) -> None:
    """添加用户 / add a user."""
    password = _password(password_stdin)
    with app.transaction() as session:
        add_user(session, app.clock, username=username, role=role, scope=scope, password=password,
                 display_name=display_name, contractor=contractor)
    click.echo(tr(f"已添加用户 {username}", f"added user {username}"))


@users.command("list")
@json_option
@pass_app
def users_list(app: App, as_json: bool) -> None:
    """列出用户 / list users."""
    with app.transaction() as session:
        rows = [{"username": u.username, "display_name": u.display_name, "role": u.role, "scope": u.scope_code,
                 "contractor": u.contractor, "active": u.active, "locked_until": u.locked_until}
                for u in list_users(session)]
    emit(rows, as_json, lambda: table(
        [tr("用户名", "Username"), tr("姓名", "Name"), tr("角色", "Role"), tr("范围", "Scope"), tr("启用", "Active")],
        [[r["username"], r["display_name"], r["role"], r["scope"], "✓" if r["active"] else "✗"] for r in rows]))


@users.command("disable")
@click.argument("username")
@pass_app
def users_disable(app: App, username: str) -> None:
    """停用用户 / disable a user (their sessions end at the next request)."""
    with app.transaction() as session:
        disable_user(session, username)
    click.echo(tr(f"已停用用户 {username}", f"disabled user {username}"))


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_app
def users_passwd(app: App, username: str, password_stdin: bool) -> None:
    """重设密码 / set a user's password (also lifts a lock-out)."""
    password = _password(password_stdin)
    with app.transaction() as session:
        set_password(session, username, password)
    click.echo(tr(f"已重设 {username} 的密码", f"password of {username} changed"))


commands = [serve, users]
