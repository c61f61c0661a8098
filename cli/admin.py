"""Schema administration."""

from __future__ import annotations

import click
from sqlalchemy import select

from cli.app import App, pass_app
from engine import Plan, current_revision, ensure_current, tr, upgrade


@click.command("init")
@pass_app
def init(app: App) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    engine = app.raw_engine()
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    url = engine.url.render_as_string()
    if before == after:
        click.echo(tr(f"数据库已是最新结构（{after}）：{url}", f"Database schema already current ({after}): {url}"))
    else:
        click.echo(tr(f"数据库结构已更新 {before or '空'} → {after}：{url}", f"Database schema upgraded {before or 'empty'} → {after}: {url}"))
    with app.transaction() as session:
        derived = sum(ensure_current(session, plan_id) for plan_id in session.scalars(select(Plan.id)))
    if derived:
        click.echo(tr(f"已计算 {derived} 所学校的截止日期与关卡状态", f"Derived the due date and gate status of {derived} schools"))


commands = [init]
