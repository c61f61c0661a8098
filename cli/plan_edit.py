"""``rollout plan edit`` and ``rollout school deadline``: changing a loaded plan mid-year.

Thin: the diff, the checks and the writes are the engine's (``engine.edit_plan``,
``engine.override_deadline``). ``plan edit`` shows the difference and changes nothing without
``--apply``. Registered on the ``plan`` and ``school`` groups.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from cli.app import App, dump_json, json_option, pass_app, table
from cli.runs import _actor, actor_options, plan, plan_option, school
from engine import CHANGE_WORDS, PlanChange, change_value, edit_plan, override_deadline, tr


def _row(c: PlanChange) -> list[str]:
    zh, en = CHANGE_WORDS.get(c.kind, (c.kind, c.kind))
    return [tr(zh, en), c.subject, change_value(c.before), change_value(c.after)]


@plan.command("edit")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--apply", "apply", is_flag=True, help="Carry the changes out (without it: only show them).")
@click.option("--reason", default=None, help="Why (required with --apply); kept in the audit trail.")
@actor_options
@json_option
@pass_app
def plan_edit(app: App, path: str, apply: bool, reason: str | None, actor: str | None, role: str, as_json: bool) -> None:
    """Compare the changed plan file PATH with the loaded plan of the same code; --apply to change it."""
    with app.transaction() as session:
        edit = edit_plan(session, path, app.clock, reason=reason, actor=_actor(actor, role), apply=apply)
    if as_json:
        click.echo(dump_json(edit.as_dict()))
        return
    if not edit.changes:
        click.echo(tr(f"计划 {edit.plan} 与文件一致，没有修改", f"plan {edit.plan} already matches the file: nothing to change"))
        return
    head = (tr(f"已修改计划 {edit.plan}（{len(edit.changes)} 项）", f"Plan {edit.plan} changed ({len(edit.changes)} change(s))")
            if edit.applied else
            tr(f"计划 {edit.plan} 将有 {len(edit.changes)} 项修改（未做更改；确认后加 --apply --reason 执行）",
               f"Plan {edit.plan} would change in {len(edit.changes)} way(s) (nothing changed; add --apply --reason to do it)"))
    click.echo(head + "\n\n" + table([tr("修改", "Change"), tr("对象", "Subject"), tr("原来", "Before"), tr("修改后", "After")],
                                     [_row(c) for c in edit.changes]))


@school.command("deadline")
@click.argument("code")
@click.option("--stage", required=True, help="The stage whose due date is set (its id in the workflow).")
@click.option("--due", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="The school's own due date (YYYY-MM-DD).")
@click.option("--reason", required=True, help="Why; kept in the audit trail.")
@plan_option
@actor_options
@pass_app
def school_deadline(app: App, code: str, stage: str, due: Any, reason: str, plan_code: str | None,
                    actor: str | None, role: str) -> None:
    """Set one school's own due date for a stage (an office's override; capped by the plan)."""
    day: date = due.date()
    with app.transaction() as session:
        override_deadline(session, app.clock, school_code=code, stage=stage, due=day, reason=reason,
                          actor=_actor(actor, role), plan_code=plan_code)
    click.echo(tr(f"学校 {code} 的阶段 {stage} 截止日期已设为 {day}", f"school {code}: stage {stage} is now due {day}"))
