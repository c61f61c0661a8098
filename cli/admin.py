"""Schema administration."""

from __future__ import annotations

import click

from engine.db import current_revision, upgrade
from engine.i18n import tr

from .app import App, pass_app


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


commands = [init]
