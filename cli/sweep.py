"""One-shot sweep and bulletins (cron-friendly); both honour ``--now``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.app import App, emit, json_option, pass_app
from cli.runs import plan_option
from engine import tr
from service import run_bulletins, run_sweep

# An office's own digest and bulletin templates (same names as notifications/templates), rendered
# in a bounded sandbox process; shared with `rollout scheduler run`.
templates_option = click.option(
    "--templates", type=click.Path(exists=True, file_okay=False, path_type=Path), envvar="ROLLOUT_TEMPLATES",
    default=None, help="Folder of the office's own templates (e.g. digest.zh.md.j2). Env: ROLLOUT_TEMPLATES.")


@click.command("sweep")
@plan_option
@templates_option
@json_option
@pass_app
def sweep(app: App, plan_code: str | None, templates: Path | None, as_json: bool) -> None:
    """巡检：自动推进、到期提醒、逾期提醒与逐级督办 / auto-advance and queue due reminders and alerts."""
    with app.transaction() as session:
        r = run_sweep(session, app.clock, plan_code, templates=templates)
    emit(r.as_dict(), as_json, lambda: tr(
        f"自动推进 {r.advanced} 所；提醒 {r.items['reminder']} 项，逾期 {r.items['overdue']} 项，督办 {r.items['escalation']} 项；入队消息 {r.messages} 条",
        f"advanced {r.advanced}; {r.items['reminder']} reminders, {r.items['overdue']} overdue, {r.items['escalation']} escalations; {r.messages} messages queued")
        + _report(r))


def _report(r: Any) -> str:
    """What did not go where it was meant to: said, never silent (issue 14)."""
    lines = []
    if r.lapsed:
        lines.append(tr(f"延期申请失效 {r.lapsed} 项（学校已离开申请的阶段，已通知学校）",
                        f"{r.lapsed} extension request(s) lapsed (the school left the stage; the school was told)"))
    if r.rerouted:
        lines.append(tr(f"督办转报 {r.rerouted} 项：本级无联系人，已发往上一级",
                        f"{r.rerouted} escalation item(s) had no recipient at their level and went to the next level up"))
    if r.unrouted:
        counts: dict[tuple[str, str], int] = {}
        for u in r.unrouted:
            counts[(u["level"], u["kind"])] = counts.get((u["level"], u["kind"]), 0) + 1
        lines += [tr(f"无人接收 {n} 项：{lv} 级 {kind}（请导入联系人）", f"{n} {kind} item(s) at level {lv} reach no one (import contacts)")
                  for (lv, kind), n in sorted(counts.items())]
    return "".join("\n" + line for line in lines)


@click.command("bulletin")
@plan_option
@templates_option
@json_option
@pass_app
def bulletin(app: App, plan_code: str | None, templates: Path | None, as_json: bool) -> None:
    """通报：按完成率与逾期率给下级地区排名 / queue this week's ranking bulletins."""
    with app.transaction() as session:
        n = run_bulletins(session, app.clock, plan_code, templates=templates)
    emit({"bulletins": n}, as_json, lambda: tr(f"入队通报 {n} 份", f"{n} bulletins queued"))


commands = [sweep, bulletin]
