"""Extension requests from the command line: request, list, approve, refuse."""

from __future__ import annotations

from typing import Any

import click

from cli.app import App, emit, json_option, pass_app, table
from cli.runs import _actor, actor_options, plan_option
from engine import decide_extension, pending_requests, request_extension, tr


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
    @click.argument("code")
    @click.option("--reason", required=True)
    @plan_option
    @actor_options
    @pass_app
    def decide(app: App, code: str, reason: str, plan_code: str | None, actor: str | None, role: str) -> None:
        with app.transaction() as session:
            decide_extension(session, app.clock, school_code=code, approve=approve, reason=reason,
                             actor=_actor(actor, role), plan_code=plan_code)
        click.echo(tr(f"{code}：延期申请已{'批准' if approve else '驳回'}", f"{code}: extension request {'approved' if approve else 'refused'}"))

    return decide


extension.command("approve", help="Approve the pending request (fires the workflow's extend transition).")(_decide(True))
extension.command("refuse", help="Refuse the pending request, with a reason (audited).")(_decide(False))

commands = [extension]
