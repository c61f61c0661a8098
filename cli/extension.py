"""Extension requests from the command line: request, list, approve, refuse."""

from __future__ import annotations

from typing import Any

import click

from cli.app import App, emit, json_option, pass_app, table
from cli.facts import entry_summary, report_refused
from cli.runs import _actor, actor_options, plan_option
from engine import (
    ImportFileError,
    decide_extension,
    decide_many,
    import_extensions,
    pending_requests,
    request_extension,
    tr,
)


@click.group("extension")
def extension() -> None:
    """延期申请与审批 / extension requests and decisions."""


@extension.command("request")
@click.argument("code")
@click.option("--due", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Requested new due date.")
@click.option("--reason", required=True)
@plan_option
@actor_options
@pass_app
def request(app: App, code: str, due: Any, reason: str, plan_code: str | None, actor: str | None, role: str) -> None:
    """Ask for a later due date for the school's current stage."""
    with app.transaction() as session:
        r = request_extension(session, app.clock, school_code=code, due=due.date(), reason=reason,
                              actor=_actor(actor, role), plan_code=plan_code)
    click.echo(tr(f"已提交延期申请：{code} {r.stage} 至 {r.due}", f"extension requested: {code} {r.stage} until {r.due}"))


@extension.command("list")
@plan_option
@json_option
@pass_app
def list_(app: App, plan_code: str | None, as_json: bool) -> None:
    """Pending requests."""
    with app.transaction() as session:
        rows = pending_requests(session, plan_code)
    emit(rows, as_json, lambda: table([tr("学校", "school"), tr("阶段", "stage"), tr("申请截止", "requested due"),
                                       tr("申请人", "by"), tr("理由", "reason")],
                                      [[r.school_code, r.stage, r.due, r.requested_by, r.reason] for r in rows]))


def _decide(approve: bool) -> Any:
    @click.argument("code", required=False)
    @click.option("--reason", required=True)
    @click.option("--all", "every", is_flag=True, help="Every pending request of the plan (with --region: of that region).")
    @click.option("--region", default=None, help="With --all: only schools in this county/city/province code.")
    @click.option("--schools", "schools_file", type=click.File(encoding="utf-8-sig"), default=None,
                  help="With --all: only the school codes listed in this file, one a line (a contractor's schools).")
    @plan_option
    @actor_options
    @pass_app
    def decide(app: App, code: str | None, reason: str, every: bool, region: str | None, schools_file: Any,
               plan_code: str | None, actor: str | None, role: str) -> None:
        word_zh, word_en = ("批准", "approved") if approve else ("驳回", "refused")
        if every == bool(code) or ((region or schools_file) and not every):
            raise click.UsageError(tr("请给出一个学校代码，或用 --all（可加 --region/--schools）",
                                      "give one school code, or --all (optionally with --region/--schools)"))
        with app.transaction() as session:
            if code:
                decide_extension(session, app.clock, school_code=code, approve=approve, reason=reason,
                                 actor=_actor(actor, role), plan_code=plan_code)
                click.echo(tr(f"{code}：延期申请已{word_zh}", f"{code}: extension request {word_en}"))
                return
            wanted = [line.strip() for line in schools_file if line.strip()] if schools_file else None
            done = decide_many(session, app.clock, approve=approve, reason=reason, actor=_actor(actor, role),
                               plan_code=plan_code, region=region, schools=wanted)
        click.echo(tr(f"已{word_zh} {len(done)} 项延期申请", f"{word_en} {len(done)} extension request(s)"))

    return decide


@extension.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--requester", default=None, help="Name the requests are recorded under (default: --actor).")
@click.option("--requester-role", default=None, help="Role the requests are made in (default: --role).")
@plan_option
@actor_options
@json_option
@pass_app
def import_(app: App, path: str, requester: str | None, requester_role: str | None, plan_code: str | None,
            actor: str | None, role: str, as_json: bool) -> None:
    """Requests and decisions from a file (学校标识码, 操作 申请/批准/驳回, 新截止日期, 理由): all or none."""
    result: Any = None
    asker = _actor(requester or actor, requester_role or role)
    try:
        with app.transaction() as session:
            result = import_extensions(session, app.clock, path, actor=_actor(actor, role), requester=asker,
                                       plan_code=plan_code)
    except ImportFileError as exc:
        report_refused(exc, as_json)
    emit({**result.as_dict(), "accepted": True}, as_json, lambda: entry_summary(result))


extension.command("approve", help="Approve the pending request of CODE, or with --all every pending one (fires the workflow's extend transition).")(_decide(True))
extension.command("refuse", help="Refuse the pending request of CODE, or with --all every pending one, with a reason (audited).")(_decide(False))

commands = [extension]
