"""``rollout workflow migrate``: move a plan's open schools to a new workflow version mid-year.

Thin: the rules, the dry run and the move are the engine's (``engine.preview_move``,
``engine.apply_move``); this prints what they return. Registered on the ``workflow`` group.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from cli.app import App, dump_json, json_option, pass_app, table
from cli.workflow import workflow
from engine import (
    Actor,
    MovePreview,
    SchoolMove,
    apply_move,
    move_workbook,
    parse_mapping,
    preview_move,
    tr,
)


@workflow.command("migrate")
@click.option("--plan", "plan_code", required=True, help="The plan whose schools move.")
@click.option("--to", "to", required=True, metavar="ID@VERSION", help="The workflow version to move to (loaded first).")
@click.option("--map", "pairs", multiple=True, metavar="OLD=NEW",
              help="Stage mapping where the new version has no stage of the same id (repeatable).")
@click.option("--region", default=None, help="Only schools in this province, city or county (6-digit code).")
@click.option("--dry-run", is_flag=True, help="Show what would change, school by school; change nothing.")
@click.option("--reason", default=None, help="Why (required unless --dry-run); kept in the audit trail.")
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the per-school result as a workbook.")
@click.option("--role", envvar="ROLLOUT_ROLE", default="province_office", show_default=True, help="Your role.")
@click.option("--actor", envvar="ROLLOUT_ACTOR", default=None, help="Your name (default: the login name).")
@json_option
@pass_app
def migrate(app: App, plan_code: str, to: str, pairs: tuple[str, ...], region: str | None, dry_run: bool,
            reason: str | None, xlsx: Path | None, role: str, actor: str | None, as_json: bool) -> None:
    """Move every open school of a plan to workflow version ID@VERSION (finished schools stay)."""
    mapping = parse_mapping(pairs)
    with app.transaction() as session:
        if dry_run:
            preview = preview_move(session, app.clock, plan_code=plan_code, to=to, mapping=mapping, region=region)
        else:
            preview = apply_move(session, app.clock, plan_code=plan_code, to=to, mapping=mapping, region=region,
                                 reason=reason or "", actor=Actor(actor or getpass.getuser(), role))
        book = move_workbook(preview) if xlsx else None
        data = preview.as_dict()
        text = _render(preview, dry_run)
    if xlsx and book is not None:
        xlsx.write_bytes(book)
    click.echo(dump_json(data | {"dry_run": dry_run}) if as_json else text)


def _changed(m: SchoolMove) -> bool:
    """Anything an official must look at besides the version number."""
    return (m.from_stage != m.to_stage or m.from_previous != m.to_previous or bool(m.now_failing or m.now_passing or m.dropped)
            or m.due_changed or m.rescheduled or m.ready_before != m.ready_after or m.overdue_before != m.overdue_after)


def _render(preview: MovePreview, dry_run: bool) -> str:
    yes = tr("是", "yes")
    head = (tr(f"预览（未做任何更改）：计划 {preview.plan} 的 {len(preview.moves)} 所学校将更换为 {preview.to_version}",
               f"Dry run (nothing changed): {len(preview.moves)} school(s) of plan {preview.plan} would move to {preview.to_version}")
            if dry_run else
            tr(f"已将计划 {preview.plan} 的 {len(preview.moves)} 所学校更换为 {preview.to_version}",
               f"Moved {len(preview.moves)} school(s) of plan {preview.plan} to {preview.to_version}"))
    head += "\n" + tr(f"已完成的 {preview.finished} 所学校保留原版本；{preview.already} 所已在该版本",
                      f"{preview.finished} finished school(s) keep their version; {preview.already} already on it")
    summary = table(
        [tr("县区", "County"), tr("学校", "Schools"), tr("阶段改变", "Stage changed"), tr("倒退", "Backwards"),
         tr("变为可推进", "Becomes ready"), tr("不再可推进", "No longer ready"), tr("变为逾期", "Becomes overdue"),
         tr("不再逾期", "No longer overdue"), tr("截止日期改变", "Due changed"), tr("提醒改期", "Reminders moved")],
        [[r["county"], r["schools"], r["stage_changed"], r["backwards"], r["becomes_ready"], r["no_longer_ready"],
          r["becomes_overdue"], r["no_longer_overdue"], r["due_changed"], r["reminders_rescheduled"]]
         for r in preview.summary()])
    changed = [m for m in preview.moves if _changed(m)]
    schools = table(
        [tr("学校", "School"), tr("阶段", "Stage"), tr("关卡变化", "Gates"), tr("截止日期", "Due"),
         tr("提醒", "Reminders"), tr("可推进", "Ready"), tr("逾期", "Overdue")],
        [[f"{m.school_code} {m.school_name}",
          f"{m.from_stage} → {m.to_stage}" + (tr("（倒退）", " (backwards)") if m.backwards else ""),
          "；".join([*(f"✗ {g.explain()}" for g in m.now_failing), *(f"✓ {g.explain()}" for g in m.now_passing),
                    *(tr(f"－ 不再要求：{g.title}", f"- no longer required: {g.title}") for g in m.dropped)]),
          f"{m.due_before.due if m.due_before else '—'} → {m.due_after.due if m.due_after else '—'}" if m.due_changed else "",
          " ".join(d.isoformat() for d in m.reminders_after) if m.rescheduled else "",
          yes if m.ready_after else "", yes if m.overdue_after else ""] for m in changed])
    rest = len(preview.moves) - len(changed)
    tail = tr(f"其余 {rest} 所学校除版本外没有变化", f"{rest} other school(s) change nothing but their version")
    return "\n\n".join([head, summary, schools if changed else "", tail]).replace("\n\n\n\n", "\n\n")
