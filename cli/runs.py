"""Plans, status, schools and transitions from the command line: thin wrappers over the engine."""

from __future__ import annotations

import getpass
from datetime import date
from typing import Any

import click

from cli.app import App, emit, json_option, pass_app, table
from engine import (
    Actor,
    advance_all_ready,
    find_plan,
    find_run,
    fire,
    load_plan,
    plan_summary,
    role_title,
    school_detail,
    set_fact,
    stage_title,
    state_title,
    status_table,
    tr,
    trigger_title,
)
from engine.workflow import Workflow, workflow_for_version

plan_option = click.option("--plan", "plan_code", default=None, help="Plan code (needed only when several plans exist).")


def actor_options(f: Any) -> Any:
    f = click.option("--role", envvar="ROLLOUT_ROLE", default="county_office", show_default=True,
                     help="Role you act in (as named in the workflow file). Env: ROLLOUT_ROLE.")(f)
    f = click.option("--actor", envvar="ROLLOUT_ACTOR", default=None,
                     help="Your name for the audit trail (default: the login name). Env: ROLLOUT_ACTOR.")(f)
    return f


def _actor(actor: str | None, role: str) -> Actor:
    return Actor(actor or getpass.getuser(), role)


@click.group("plan")
def plan() -> None:
    """年度计划 / the office's plan."""


@plan.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@actor_options
@json_option
@pass_app
def plan_load(app: App, path: str, actor: str | None, role: str, as_json: bool) -> None:
    """Load a plan file: batches, schools, deadlines (all or nothing, audited)."""
    with app.transaction() as session:
        p = load_plan(session, path, app.clock, actor=_actor(actor, role).name, role=role)
        summary = plan_summary(session, p)
    emit(summary, as_json, lambda: tr(f"已载入计划 {p.code}：", f"Plan {p.code} loaded: ") + tr("，", ", ").join(
        tr(f"{b['title']}（{b['id']}）{b['schools']} 所", f"{b['title']} ({b['id']}) {b['schools']}") for b in summary["batches"]))


@plan.command("show")
@plan_option
@json_option
@pass_app
def plan_show(app: App, plan_code: str | None, as_json: bool) -> None:
    """Show a plan and its batches."""
    with app.transaction() as session:
        summary = plan_summary(session, find_plan(session, plan_code))
    emit(summary, as_json, lambda: f"{summary['plan']}  {summary['title']}\n" + table(
        [tr("批次", "batch"), tr("名称", "title"), tr("开始", "start"), tr("占比", "share"), tr("学校数", "schools")],
        [[b["id"], b["title"], b["start"], "" if b["share"] is None else f"{b['share']:.0%}", b["schools"]] for b in summary["batches"]]))


@click.command("status")
@plan_option
@click.option("--region", default=None, help="Region code: rows are its child regions.")
@json_option
@pass_app
def status(app: App, plan_code: str | None, region: str | None, as_json: bool) -> None:
    """学校分布：地区 × 阶段，逾期、即将到期、可推进 / schools per region × stage, overdue, due soon, ready."""
    with app.transaction() as session:
        wf, rows = status_table(session, app.clock, plan_code=plan_code, region=region, people=True)
    emit([r.__dict__ for r in rows], as_json, lambda: render_status(wf, rows))


def render_status(wf: Any, rows: list[Any]) -> str:
    stages = [s for s in wf.stages if not s.hold or any(r.stages.get(s.id) for r in rows)]
    headers = [tr("地区", "region"), tr("学校", "schools"), tr("未开始", "not started")]
    shown = ("overdue", "due_soon", "ready")  # engine.school_state: the states an office acts on
    headers += [str(s.title) for s in stages] + [state_title(k) for k in shown]
    body = [[f"{r.region_name}({r.region_code})", r.schools, r.not_started, *[r.stages.get(s.id, 0) for s in stages],
             *[r.states.get(k, 0) for k in shown]] for r in rows]
    totals = [tr("合计", "total"), *[sum(int(b[i]) for b in body) for i in range(1, len(headers))]]
    return table(headers, [*body, totals]) if len(body) > 1 else table(headers, body)


@click.group("school")
def school() -> None:
    """单校 / one school."""


@school.command("show")
@click.argument("code")
@plan_option
@actor_options
@json_option
@pass_app
def school_show(app: App, code: str, plan_code: str | None, actor: str | None, role: str, as_json: bool) -> None:
    """State, deadline, every gate explained, teachers, history; the actions --role may take."""
    with app.transaction() as session:
        d = school_detail(session, app.clock, code, plan_code, role=role)
        wf = workflow_for_version(session, find_run(session, code, plan_code).workflow_version_id)
    emit(d, as_json, lambda: render_school(d, wf))


def render_school(d: dict[str, Any], wf: Workflow | None = None) -> str:
    s = d["school"]
    lines = [f"{s['name']}（{s['code']}）  {tr('计划', 'plan')} {d['plan']} / {tr('批次', 'batch')} {d['batch_title']}  {d['workflow']}",
             f"{tr('当前阶段', 'stage')}：{d['stage_title']}（{d['state']}）" + ("" if d["started"] else tr("  尚未开始", "  not started"))]
    due = d["due"]
    if due:
        when = tr(f"逾期 {due['days_overdue']} 天", f"{due['days_overdue']} days overdue") if due["days_overdue"] else tr(f"剩余 {due['days_left']} 天", f"{due['days_left']} days left")
        flag = tr("（临时日历）", " (provisional calendar)") if due["provisional"] else ""
        lines.append(f"{tr('截止日期', 'due')}：{due['date']}{flag}，{when}")
    if d["gates"]:
        lines.append(tr("关卡：", "Gates:"))
        lines += [f"  {g['explanation']}" for g in d["gates"]]
    t = d["teachers"]
    lines.append(tr(f"教师 {t['teachers']} 人：网络研修不足25学时 {t['online_below_25h']}，校本实践不足25学时 {t['practice_below_25h']}，未选满3个能力点 {t['points_below_3']}，成果未交齐 {t['evidence_missing']}",
                    f"{t['teachers']} teachers: {t['online_below_25h']} below 25 online hours, {t['practice_below_25h']} below 25 practice hours, {t['points_below_3']} with < 3 points, {t['evidence_missing']} missing evidence"))
    # Words for officials, ids in brackets: the ids are what `rollout transition` takes.
    lines.append(tr("可执行操作：", "Allowed: ") + tr("、", ", ").join(
        tr(f"{trigger_title(wf, t, d['state'])}（{t}）", f"{trigger_title(wf, t, d['state'])} ({t})")
        for t in d["allowed"]))
    lines.append(tr("历史：", "History:"))
    for e in d["history"]:
        move = (f"{stage_title(wf, e['from_state'])}→{stage_title(wf, e['to_state'])}"
                if e["from_state"] != e["to_state"] else stage_title(wf, e["to_state"]))
        lines.append(f"  #{e['seq']} {e['at_local']} {e['actor']}（{role_title(e['role'], wf)}） "
                     f"{trigger_title(wf, e['trigger'], e['from_state'])} {move} {e['reason'] or ''}".rstrip())
    return "\n".join(lines)


@school.command("fact")
@click.argument("code")
@click.argument("name")
@click.argument("value", type=float)
@click.option("--note", default=None)
@plan_option
@actor_options
@pass_app
def school_fact(app: App, code: str, name: str, value: float, note: str | None, plan_code: str | None,
                actor: str | None, role: str) -> None:
    """Record a school-level fact (e.g. plan_filed 1, team_members 4) — audited.

    Only the roles the workflow names for the fact may record it: give yours with --role
    (e.g. --role supervisor for supervision_result); a refusal lists the roles allowed.
    """
    with app.transaction() as session:
        changed = set_fact(session, app.clock, school_code=code, name=name, value=value, actor=_actor(actor, role),
                           note=note, plan_code=plan_code)
    click.echo(tr(f"{code} {name} = {value:g}", f"{code} {name} = {value:g}") + ("" if changed else tr("（未变化）", " (unchanged)")))


@click.command("advance")
@click.argument("code", required=False)
@click.option("--all-ready", is_flag=True, help="Advance every school whose gates pass (one summary).")
@click.option("--region", default=None, help="With --all-ready: only this region's subtree.")
@plan_option
@actor_options
@json_option
@pass_app
def advance(app: App, code: str | None, all_ready: bool, region: str | None, plan_code: str | None,
            actor: str | None, role: str, as_json: bool) -> None:
    """推进 / advance one school, or all ready schools."""
    who = _actor(actor, role)
    if all_ready == bool(code):
        raise click.UsageError(tr("请给出学校代码，或使用 --all-ready", "give a school code or --all-ready"))
    if all_ready:
        with app.transaction() as session:
            r = advance_all_ready(session, app.clock, actor=who, plan_code=plan_code, region=region)
            wf = workflow_for_version(session, find_plan(session, plan_code).workflow_version_id)
        emit(r.as_dict(), as_json, lambda: tr(
            f"已推进 {r.advanced} 所学校，条件未满足 {r.blocked} 所，未开始 {r.not_started} 所", f"advanced {r.advanced} schools, {r.blocked} with conditions not met, {r.not_started} not started")
            + "".join(f"\n  {stage_title(wf, a)} → {stage_title(wf, b)}: {n}" for (a, b), n in sorted(r.moves.items())))
        return
    assert code is not None
    with app.transaction() as session:
        wf, wf_trigger = _advance_trigger(session, code, plan_code)
        out = fire(session, app.clock, school_code=code, trigger=wf_trigger, actor=who, plan_code=plan_code)
    emit(out, as_json, lambda: _moved(wf, code, out))


def _moved(wf: Workflow, code: str, out: Any, trigger: str | None = None) -> str:
    """'3737000002：制定规划 → 网络研修' — the stages' words, as `school show` names them (issue 17, 19)."""
    action = f"{trigger_title(wf, trigger, out.from_state)} " if trigger else ""
    return tr("：", ": ").join((code, f"{action}{stage_title(wf, out.from_state)} → {stage_title(wf, out.to_state)}"))


def _advance_trigger(session: Any, code: str, plan_code: str | None) -> tuple[Workflow, str]:
    run = find_run(session, code, plan_code)
    wf = workflow_for_version(session, run.workflow_version_id)
    t = next((t for t in wf.transitions_from(run.state) if t.kind == "advance"), None)
    return wf, (t.trigger if t else "advance")


@click.command("transition")
@click.argument("code")
@click.argument("trigger")
@click.option("--reason", default=None, help="Why (required for return, suspend, override, extend).")
@click.option("--due", type=click.DateTime(["%Y-%m-%d"]), default=None, help="New due date (extend).")
@click.option("--expect-version", type=int, default=None, help="Refuse if the school changed since you looked.")
@plan_option
@actor_options
@json_option
@pass_app
def transition(app: App, code: str, trigger: str, reason: str | None, due: Any, expect_version: int | None,
               plan_code: str | None, actor: str | None, role: str, as_json: bool) -> None:
    """Fire any trigger: return_for_rework, suspend, resume, extend, override …"""
    due_date: date | None = due.date() if due else None
    with app.transaction() as session:
        out = fire(session, app.clock, school_code=code, trigger=trigger, actor=_actor(actor, role), reason=reason,
                   plan_code=plan_code, expected_version=expect_version, due=due_date)
        wf = workflow_for_version(session, find_run(session, code, plan_code).workflow_version_id)
    emit(out, as_json, lambda: _moved(wf, code, out, trigger))


commands = [plan, status, school, advance, transition]
