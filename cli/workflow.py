"""``rollout workflow``: check, load and look at workflow files.

``validate`` needs no database, so a clerk can check a file before anything else exists.
``show`` finds a workflow in the database first, else among the shipped files in workflows/.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.engine import make_url

from cli.app import App, dump_json, json_option, pass_app, table
from engine import NotFound, RolloutError, WorkflowVersion, tr
from engine.workflow import (
    DueRule,
    ReminderRule,
    Workflow,
    find_workflow,
    load_workflow_file,
    mermaid,
    read_source,
    register_workflow,
    shipped_workflow_paths,
    validate_files,
    workflow_for_version,
)


@click.group("workflow")
@click.pass_context
def workflow(ctx: click.Context) -> None:
    """工作流文件：校验、加载、查看 / Workflow files: validate, load, show."""


@workflow.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def validate(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Check workflow files; print OK or every problem with file:line:column."""
    failed = 0
    for name, problems in validate_files(files).items():
        if not problems:
            click.echo(tr(f"{name}：通过", f"{name}: OK"))
            continue
        failed += 1
        click.echo(tr(f"{name}：{len(problems)} 个问题", f"{name}: {len(problems)} problem(s)"))
        for problem in problems:
            click.echo(f"  {problem}")
    if failed:
        click.echo(tr(f"{failed} 个文件未通过校验", f"{failed} file(s) failed validation"), err=True)
        ctx.exit(1)


@workflow.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def load(app: App, file: Path) -> None:
    """Validate FILE and store it as a workflow version that plans can use."""
    wf = load_workflow_file(file)
    text = read_source(file)
    with app.transaction() as session:
        before = session.scalars(
            select(WorkflowVersion.content_hash).where(
                WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.version
            )
        ).one_or_none()
        row = register_workflow(session, wf, text, app.clock)
        row_id = row.id
    if before is None:
        click.echo(tr(f"已加载工作流 {wf.key}（记录 #{row_id}）", f"Loaded workflow {wf.key} (record #{row_id})"))
    elif before == wf.content_hash:
        click.echo(tr(f"工作流 {wf.key} 已加载，内容未变（记录 #{row_id}）", f"Workflow {wf.key} already loaded, content unchanged (record #{row_id})"))
    else:
        click.echo(tr(f"工作流 {wf.key} 尚无学校使用，已替换为新内容（记录 #{row_id}）", f"Workflow {wf.key} had no schools yet and was replaced with the new content (record #{row_id})"))
    if file.stem != wf.id:
        # A copy of the shipped file keeps its id: `workflow show my-county` then found nothing (issue 17, 13).
        click.echo(tr(f"提示：{file.name} 中的 workflow: 是 {wf.id}，已按 {wf.id} 载入；若这是另一个工作流，请先把 workflow: 改为新的名称（如 {file.stem}）",
                      f"Note: {file.name} says workflow: {wf.id}, so it was loaded as {wf.id}; if it is a different workflow, "
                      f"change workflow: to a new id (e.g. {file.stem}) first"), err=True)


def _db_exists(url: str) -> bool:
    """A SQLite file that is not there is not looked into (and so not created by looking)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(str(parsed.database)).exists()
    return True


def _from_db(app: App, wf_id: str, version: str | None) -> Workflow | None:
    if not _db_exists(app.db_url):
        return None
    try:
        with app.transaction() as session:
            return workflow_for_version(session, find_workflow(session, wf_id, version).id)
    except NotFound:
        return None


def _from_files(wf_id: str, version: str | None) -> Workflow | None:
    for path in shipped_workflow_paths():
        try:
            wf = load_workflow_file(path)
        except RolloutError:
            continue  # a broken shipped file is reported by 'workflow validate', not here
        if wf.id == wf_id and (version is None or wf.version == version):
            return wf
    return None


def _due_text(due: DueRule | None) -> str:
    if due is None:
        return ""
    if due.kind == "date":
        return str(due.date)
    unit = tr("个工作日", " working days") if due.working_days else tr("天", " days")
    anchor = tr("进入阶段后", "after stage entry") if due.kind == "after_stage_entry" else tr("批次开始后", "after batch start")
    return tr(f"{anchor} {due.amount}{unit}", f"{due.amount}{unit} {anchor}")


def _remind_text(remind: ReminderRule | None) -> str:
    if remind is None:
        return ""
    parts = []
    if remind.before_days:
        days = "/".join(str(d) for d in remind.before_days)
        parts.append(tr(f"提前 {days} 天", f"{days} days before"))
    if remind.repeat_days:
        parts.append(tr(f"每 {remind.repeat_days} 天重发", f"repeat every {remind.repeat_days} days"))
    if remind.escalate:
        parts.append(tr("升级 ", "escalate ") + " ".join(f"{e.to}+{e.after_days}" for e in remind.escalate))
    return "; ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def workflow_dict(wf: Workflow) -> dict[str, Any]:
    """A JSON-ready description of ``wf`` (without the internal stage index)."""
    return {
        "id": wf.id,
        "version": wf.version,
        "title": asdict(wf.title),
        "description": wf.description,
        "initial": wf.initial,
        "entry_stages": list(wf.entry_stages),
        "roles": {k: asdict(v) for k, v in wf.roles.items()},
        "metrics": {k: asdict(v) for k, v in wf.metrics.items()},
        "stages": [asdict(s) for s in wf.stages],
        "transitions": [asdict(t) for t in wf.transitions],
        "content_hash": wf.content_hash,
        "source_name": wf.source_name,
    }


def _render(wf: Workflow) -> str:
    head = f"{wf.title} ({wf.key})\n" + tr(
        f"初始阶段：{wf.initial}；入口阶段：{', '.join(wf.entry_stages) or '无'}",
        f"Initial stage: {wf.initial}; entry stages: {', '.join(wf.entry_stages) or 'none'}",
    )
    stage_rows = []
    for s in wf.stages:
        kind = "terminal" if s.terminal else ("hold" if s.hold else "")
        gates = "; ".join(f"{g.id}: {g.metric} {g.op} {_number(g.value)}" for g in s.gates)
        stage_rows.append([s.id, str(s.title), kind, gates, _due_text(s.due), _remind_text(s.remind)])
    stages = table(
        [tr("阶段", "Stage"), tr("名称", "Title"), tr("类型", "Kind"), tr("门槛", "Gates"), tr("期限", "Due"), tr("提醒", "Reminders")],
        stage_rows,
    )
    yes = tr("是", "yes")
    transition_rows = [
        [t.trigger, t.kind, ", ".join(t.sources), t.dest or "", ", ".join(t.roles), yes if t.auto else "", yes if t.reason_required else ""]
        for t in wf.transitions
    ]
    transitions = table(
        [tr("触发器", "Trigger"), tr("类型", "Kind"), tr("从", "From"), tr("到", "To"), tr("角色", "Roles"), tr("自动", "Auto"), tr("需理由", "Reason")],
        transition_rows,
    )
    fact_rows = [[m.fact or "", str(m.title), ", ".join(wf.fact_roles(m.fact or ""))]
                 for m in wf.metrics.values() if m.kind == "fact"]
    facts = table([tr("事实项", "Fact"), tr("名称", "Title"), tr("可记录的角色", "Recorded by")], fact_rows)
    return f"{head}\n\n{stages}\n\n{transitions}" + (f"\n\n{facts}" if fact_rows else "")


@workflow.command("show")
@click.argument("workflow_id", metavar="ID")
@click.option("--version", "version", default=None, help="Version to show (default: the latest loaded).")
@click.option("--mermaid", "as_mermaid", is_flag=True, help="Print a Mermaid state diagram.")
@json_option
@pass_app
def show(app: App, workflow_id: str, version: str | None, as_mermaid: bool, as_json: bool) -> None:
    """Show a workflow's stages, gates, deadlines, reminders and transitions."""
    wf = _from_db(app, workflow_id, version) or _from_files(workflow_id, version)
    if wf is None:
        what = f"{workflow_id}@{version}" if version else workflow_id
        raise NotFound(tr(f"找不到工作流 {what}（数据库和 workflows/ 目录中都没有）", f"workflow {what} not found (neither in the database nor in workflows/)"))
    if as_mermaid:
        click.echo(mermaid(wf), nl=False)
    elif as_json:
        click.echo(dump_json(workflow_dict(wf)))
    else:
        click.echo(_render(wf))


commands = [workflow]
