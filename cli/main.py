"""The ``rollout`` command: global options, and every command module found in this package.

Each module of ``cli`` that has a ``commands`` list contributes those commands, so adding a
command never means editing this file.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

import cli
from cli.app import App
from engine import (
    DEFAULT_URL,
    FixedClock,
    RolloutError,
    SystemClock,
    database_error,
    parse_timestamp,
    set_language,
    tr,
)


class RolloutGroup(click.Group):
    """Turns engine errors into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RolloutError as exc:
            click.echo(tr("错误：", "Error: ") + str(exc), err=True)
            ctx.exit(1)
        except DBAPIError as exc:  # a busy SQLite file, a wrong PostgreSQL URL, a dropped connection
            unavailable = database_error(exc)
            if unavailable is None:
                raise
            click.echo(tr("错误：", "Error: ") + str(unavailable), err=True)
            ctx.exit(1)


@click.group(cls=RolloutGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_url",
    envvar="ROLLOUT_DB",
    default=DEFAULT_URL,
    show_default=True,
    help="Database URL (sqlite:///file.db or postgresql://…). Env: ROLLOUT_DB.",
)
@click.option(
    "--now",
    envvar="ROLLOUT_NOW",
    default=None,
    help="Pretend the time is this ISO date/time (local Asia/Shanghai unless an offset is given). Env: ROLLOUT_NOW.",
)
@click.option(
    "--lang",
    envvar="ROLLOUT_LANG",
    type=click.Choice(["zh", "en"]),
    default="zh",
    show_default=True,
    help="Language of messages. Env: ROLLOUT_LANG.",
)
@click.version_option(package_name="rollout")
@click.pass_context
def main(ctx: click.Context, db_url: str, now: str | None, lang: str) -> None:
    """rollout：提升工程2.0 整校推进工作流引擎 / whole-school rollout workflow engine."""
    set_language(lang)
    if now:
        try:
            clock: FixedClock | SystemClock = FixedClock(parse_timestamp(now))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--now") from exc
    else:
        clock = SystemClock()
    app = ctx.obj = App(db_url=db_url, clock=clock, lang=lang)
    ctx.call_on_close(app.close)  # no pooled connection outlives the command


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda m: m.name):
        if info.name in ("main", "app", "__main__"):
            continue
        module = importlib.import_module(f"cli.{info.name}")
        for command in getattr(module, "commands", []):
            main.add_command(command)


_register()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(prog_name=os.path.basename(sys.argv[0])))
