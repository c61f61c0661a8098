"""Contractor assignment from a file: `rollout contractors import FILE` (seed 002 承担单位分配表)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from cli.app import App, emit, json_option, pass_app
from cli.facts import report_refused
from cli.runs import _actor, actor_options, plan_option
from engine import ImportFileError, tr
from engine.imports import import_contractors


@click.group("contractors")
def contractors() -> None:
    """承训单位 / contractors and their schools."""


@contractors.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@plan_option
@actor_options
@json_option
@pass_app
def import_(app: App, path: str, plan_code: str | None, actor: str | None, role: str, as_json: bool) -> None:
    """Assign schools to contractors (headers 学校标识码, 承训单位): all rows or none, each change audited."""
    result: Any = None
    who = _actor(actor, role)
    try:
        with app.transaction() as session:
            result = import_contractors(session, app.clock, path, actor=who.name, role=who.role, plan_code=plan_code)
    except ImportFileError as exc:
        report_refused(exc, as_json)
    emit({**asdict(result), "accepted": True}, as_json, lambda: tr(
        f"承训单位分配完成：共 {result.rows} 行，变更 {result.changed}，未变 {result.unchanged}；"
        + "，".join(f"{k} {v} 所" for k, v in sorted(result.contractors.items())),
        f"contractors assigned: {result.rows} rows, {result.changed} changed, {result.unchanged} unchanged; "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.contractors.items()))))


commands = [contractors]
