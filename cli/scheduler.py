"""``rollout scheduler run|status``: the resident service and what operators check on it."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from cli.app import App, emit, json_option, pass_app, table
from cli.sweep import templates_option
from engine import tr
from service import (
    ScheduleError,
    Settings,
    bulletin_trigger,
    parse_every,
    run_once,
    serve,
    status,
)


@click.group("scheduler")
def scheduler() -> None:
    """调度服务：定时巡检、发送通知、每周简报 / the scheduler service."""


def _every(_ctx: click.Context, param: click.Parameter, value: str) -> Any:
    try:
        return parse_every(value)
    except ScheduleError as exc:
        raise click.BadParameter(str(exc), param=param) from exc


def _cron(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        bulletin_trigger(value)
    except ScheduleError as exc:
        raise click.BadParameter(str(exc), param=param) from exc
    return value


@scheduler.command("run")
@click.option("--sweep-every", default="15m", show_default=True, callback=_every, help="Sweep interval (30s, 15m, 2h, 1d).")
@click.option("--dispatch-every", default="1m", show_default=True, callback=_every, help="Outbox dispatch interval.")
@click.option("--bulletin-cron", default="0 8 * * MON", show_default=True, callback=_cron,
              help="Weekly bulletin, crontab in Asia/Shanghai; day of week as MON…SUN.")
@click.option("--once", is_flag=True, help="Run sweep, dispatch and bulletins once now and exit (uses --now).")
@templates_option
@pass_app
def run(app: App, sweep_every: Any, dispatch_every: Any, bulletin_cron: str, once: bool, templates: Path | None) -> None:
    """运行调度服务（PostgreSQL 上多进程自动选主）/ run the scheduler (one leader per database)."""
    if once:
        results = run_once(app.engine, app.clock, templates=templates)
        for name, outcome in results.items():
            if outcome.get("ok"):
                click.echo(f"{name}: {outcome.get('result')}")
            else:
                click.echo(f"{name}: " + tr("失败：", "failed: ") + str(outcome.get("error")), err=True)
        if not all(outcome.get("ok") for outcome in results.values()):
            sys.exit(1)
        return
    engine = app.engine  # schema checked before logging is switched on (keeps Alembic's chatter out)
    # Service logs (job runs, job errors with tracebacks) go to stderr, i.e. the journal.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        click.echo(tr(f"收到信号 {signum}，等待正在运行的任务结束后退出……",
                      f"signal {signum}: stopping after running jobs finish…"), err=True)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        settings = Settings(sweep_every=sweep_every, dispatch_every=dispatch_every, bulletin_cron=bulletin_cron,
                            templates=templates)
        code = serve(engine, settings, stop, lambda line: click.echo(line, err=True))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code:
        sys.exit(code)


def _render(data: dict[str, Any]) -> str:
    leader = data["leader"]
    if leader is None:
        lines = [tr("调度主进程：无（从未运行）", "leader: none (never ran)")]
    else:
        state = tr("已停止 ", "stopped ") + leader["stopped_at"] if leader.get("stopped_at") else tr("运行中", "running")
        lines = [tr("调度主进程：", "leader: ") + f"{leader['id']}  {tr('自', 'since')} {leader['since']}  "
                 f"{tr('心跳', 'heartbeat')} {leader['heartbeat']}  {state}"]
    rows = []
    for name, job in data["jobs"].items():
        last = job["last"] or {}
        outcome = "" if not last else (tr("成功", "ok") if last.get("ok") else tr("失败：", "failed: ") + last.get("error", ""))
        result = last.get("result")
        rows.append([name, last.get("finished_at", ""), outcome, "" if result is None else str(result), job["next_run_at"]])
    lines.append(table([tr("任务", "job"), tr("上次完成", "last finished"), tr("结果", "outcome"),
                        tr("详情", "details"), tr("下次运行", "next run")], rows))
    outbox = data["outbox"]
    lines.append(tr(f"待发通知 {outbox['pending']} 条；失败（死信）{outbox['dead']} 条",
                    f"outbox pending {outbox['pending']}; dead letters {outbox['dead']}"))
    return "\n".join(lines)


@scheduler.command("status")
@json_option
@pass_app
def status_(app: App, as_json: bool) -> None:
    """查看调度主进程、各任务上次运行情况与发件箱积压 / leader, last runs, outbox backlog."""
    data = status(app.engine)
    emit(data, as_json, lambda: _render(data))


commands = [scheduler]
