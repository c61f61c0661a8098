"""Bulk entry of school facts from a file: `rollout facts import FILE`."""

from __future__ import annotations

from typing import Any

import click

from cli.app import App, dump_json, emit, json_option, pass_app
from cli.runs import _actor, actor_options, plan_option
from engine import EntryResult, ImportFileError, import_facts, tr


@click.group("facts")
def facts() -> None:
    """学校事实项批量录入 / school facts in bulk."""


def entry_summary(r: EntryResult) -> str:
    return tr(f"导入完成：共 {r.rows} 行，记录 {r.changed}，未变 {r.unchanged}（{r.source}）",
              f"imported: {r.rows} rows, {r.changed} recorded, {r.unchanged} unchanged ({r.source})")


def report_refused(exc: ImportFileError, as_json: bool) -> None:
    """A refused file: every problem (row, column, header) as JSON, or the shell's clean message."""
    if not as_json:
        raise exc
    problems = [{"row": p.line, "column": p.column, "header": p.field, "message": p.message} for p in exc.problems]
    click.echo(dump_json({"source": exc.source, "accepted": False, "problems": problems}))
    click.get_current_context().exit(1)


@facts.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@plan_option
@actor_options
@json_option
@pass_app
def import_(app: App, path: str, plan_code: str | None, actor: str | None, role: str, as_json: bool) -> None:
    """Record every row's fact (headers 学校标识码, 事实项, 值, 备注): all rows or none, each audited."""
    result: Any = None
    try:
        with app.transaction() as session:
            result = import_facts(session, app.clock, path, actor=_actor(actor, role), plan_code=plan_code)
    except ImportFileError as exc:
        report_refused(exc, as_json)
    emit({**result.as_dict(), "accepted": True}, as_json, lambda: entry_summary(result))


commands = [facts]
