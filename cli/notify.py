"""Notifications from the command line: deliver the outbox, inspect it, re-queue dead letters,
and import the contact list that says who hears about what."""

from __future__ import annotations

import os
import socket
from typing import Any

import click

from cli.app import App, emit, json_option, pass_app, table
from engine import tr
from notifications import (
    STATUSES,
    DispatchResult,
    dispatch,
    import_contacts,
    list_notifications,
    redact,
    retry_dead,
)


def _dispose_on_close(ctx: click.Context) -> None:
    """Close pooled connections when the command ends (psycopg warns about ones left open)."""


@click.group("notify")
@click.pass_context
def notify(ctx: click.Context) -> None:
    """通知：发送待发通知、查看发件箱、重发失败通知 / deliver and inspect notifications."""
    _dispose_on_close(ctx)


def _summary(result: DispatchResult) -> str:
    return tr(
        f"已送达 {result.sent} 条（共发送 {result.messages} 次）；待重试 {result.retrying} 条；"
        f"失败 {result.dead} 条；因限流延后 {result.deferred} 条",
        f"delivered {result.sent} ({result.messages} send(s)); retrying {result.retrying}; "
        f"dead {result.dead}; deferred by rate limits {result.deferred}",
    )


@notify.command("send")
@click.option("--batch-size", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--max-attempts", default=8, show_default=True, type=click.IntRange(1, 100))
@click.option("--worker", "worker_id", default=None, help="Dispatcher name recorded in claims (default host:pid).")
@click.option("--all", "drain", is_flag=True, help="Repeat passes until nothing due is left (or a pass delivers nothing).")
@json_option
@pass_app
def send(app: App, batch_size: int, max_attempts: int, worker_id: str | None, drain: bool, as_json: bool) -> None:
    """发送到期的待发通知（一轮；--all 直到发完）/ one dispatch pass over the outbox (uses --now)."""
    worker = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    total = DispatchResult()
    while True:
        result = dispatch(app.engine, app.clock, worker_id=worker, batch_size=batch_size, max_attempts=max_attempts)
        for name in total.__dataclass_fields__:
            setattr(total, name, getattr(total, name) + getattr(result, name))
        if not drain or result.claimed == 0 or result.sent == 0:
            break
    emit(total, as_json, lambda: _summary(total))


def _address(channel: str, address: str) -> str:
    return redact(address) if channel in ("dingtalk", "wecom", "feishu") else address


@notify.command("list")
@click.option("--failed", is_flag=True, help="Only dead letters and rows that failed at least once.")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@json_option
@pass_app
def list_(app: App, failed: bool, status: str | None, limit: int, as_json: bool) -> None:
    """列出通知（最新在前）/ list notifications, newest first."""
    with app.transaction() as session:
        rows = list_notifications(session, status=status, limit=limit, failed=failed)
        data: list[dict[str, Any]] = [
            {
                "id": n.id, "status": n.status, "kind": n.kind, "channel": n.channel,
                "address": _address(n.channel, n.address), "subject": n.subject, "attempts": n.attempts,
                "next_attempt_at": n.next_attempt_at, "sent_at": n.sent_at, "last_error": n.last_error,
                "dedupe_key": n.dedupe_key,
            }
            for n in rows
        ]

    def render() -> str:
        if not data:
            return tr("没有符合条件的通知", "no notifications match")
        headers = [tr("编号", "ID"), tr("状态", "Status"), tr("类型", "Kind"), tr("渠道", "Channel"),
                   tr("地址", "Address"), tr("标题", "Subject"), tr("尝试", "Tries"), tr("最近错误", "Last error")]
        # The words, not the stored ids, in the table (issue 17, 19); --json keeps the ids.
        words = {"pending": tr("待发", "pending"), "sent": tr("已送达", "sent"), "dead": tr("失败", "dead"),
                 "reminder": tr("提醒", "reminder"), "overdue": tr("逾期", "overdue"),
                 "escalation": tr("督办", "escalation"), "bulletin": tr("通报", "bulletin"),
                 "email": tr("邮件", "email"), "dingtalk": tr("钉钉", "DingTalk"), "wecom": tr("企业微信", "WeCom"),
                 "feishu": tr("飞书", "Feishu"), "file": tr("文件", "file")}
        body = [[d["id"], words.get(d["status"], d["status"]), words.get(d["kind"], d["kind"]),
                 words.get(d["channel"], d["channel"]), d["address"], d["subject"], d["attempts"],
                 str(d["last_error"] or "")[:80]] for d in data]
        return table(headers, body)

    emit(data, as_json, render)


@notify.command("retry")
@click.argument("ids", nargs=-1, type=int)
@pass_app
def retry(app: App, ids: tuple[int, ...]) -> None:
    """把失败的通知重新排队（不给编号则全部）/ re-queue dead letters (all when no IDs given)."""
    with app.transaction() as session:
        count = retry_dead(session, list(ids) if ids else None, now=app.clock.now())
    click.echo(tr(f"已重新排队 {count} 条通知", f"re-queued {count} notification(s)"))
    if ids and count < len(ids):
        click.echo(tr("其余编号不是失败通知（或不存在），未改动", "the other IDs are not dead letters (or do not exist); left alone"), err=True)


@click.group("contacts")
@click.pass_context
def contacts(ctx: click.Context) -> None:
    """通知联系人 / who is notified where."""
    _dispose_on_close(ctx)


@contacts.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@pass_app
def import_(app: App, path: str) -> None:
    """导入联系人表（CSV/XLSX，全部通过才写入）/ import contacts (all or nothing)."""
    with app.transaction() as session:
        result = import_contacts(session, path)
    click.echo(tr(
        f"已导入 {result.total} 行联系人：新增 {result.inserted}，更新 {result.updated}，未变 {result.unchanged}",
        f"imported {result.total} contact row(s): {result.inserted} new, {result.updated} updated, {result.unchanged} unchanged",
    ))


commands = [notify, contacts]
