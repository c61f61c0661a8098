"""``rollout demo``: replay a county's programme year on the configured database."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
from sqlalchemy import func, select

from cli.app import App, pass_app
from cli.demo.year import FINAL, TZ, at, run_demo
from cli.runs import render_school, render_status
from engine import (
    FixedClock,
    Plan,
    RolloutError,
    find_run,
    school_detail,
    sessions,
    status_table,
    tr,
    upgrade,
)
from engine.workflow import workflow_for_version


@click.command("demo")
@click.option("--seed", default=2021, show_default=True, help="Random seed: same seed, same output.")
@click.option("--schools", "n_schools", default=100, show_default=True)
@click.option("--teachers", "n_teachers", default=5000, show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), default="rollout-demo-files", show_default=True,
              help="Where the generated CSV files and the file channel's messages go (emptied first).")
@pass_app
def demo(app: App, seed: int, n_schools: int, n_teachers: int, workdir: str) -> None:
    """演示：沂源县一年的整校推进 / replay Yiyuan county's programme year (seed 001)."""
    engine = app.raw_engine()
    upgrade(engine)
    factory = sessions(engine)
    with factory() as session:
        if session.scalar(select(func.count()).select_from(Plan)):
            raise RolloutError(tr(f"演示需要一个空数据库：{engine.url.render_as_string()} 已有计划（换一个 --db）",
                                  f"the demo needs an empty database: {engine.url.render_as_string()} already has a plan (use another --db)"))
    started = time.monotonic()
    folder = Path(workdir)
    if folder.exists():
        shutil.rmtree(folder)  # same seed, same output: no messages left from an earlier run

    def phase_end(title: str, clock: FixedClock) -> None:
        with factory() as session:
            wf, rows = status_table(session, clock)
        click.echo(f"\n== {title}  ({clock.now().astimezone(TZ).date()}) ==")
        click.echo(render_status(wf, rows))

    report = run_demo(engine, folder, seed=seed, n_schools=n_schools, n_teachers=n_teachers, on_phase_end=phase_end)
    if report.blocked_example:
        with factory() as session:
            d = school_detail(session, FixedClock(at(FINAL)), report.blocked_example, role="county_office")  # what the county may do
            wf = workflow_for_version(session, find_run(session, report.blocked_example).workflow_version_id)
        d["history"] = d["history"][-6:]
        click.echo(tr("\n== 一所受阻学校的说明 ==", "\n== Why one school is blocked =="))
        click.echo(render_school(d, wf))
    assert report.verify is not None
    click.echo("")
    click.echo(tr(f"学校 {report.schools} 所，教师 {report.teachers} 人；自动推进 {report.advanced} 次，退回整改 {report.returned} 次",
                  f"{report.schools} schools, {report.teachers} teachers; {report.advanced} automatic advances, {report.returned} returned for rework"))
    m = report.messages
    click.echo(tr(
        f"通知：提醒 {report.items['reminder']} 项、逾期 {report.items['overdue']} 项、逐级督办 {report.items['escalation']} 项；"
        f"已送达消息：提醒 {m.get('reminder', 0)} 条、逾期 {m.get('overdue', 0)} 条、督办 {m.get('escalation', 0)} 条、通报 {m.get('bulletin', 0)} 份，写入 {report.outbox_dir}",
        f"notifications: {report.items['reminder']} reminder items, {report.items['overdue']} overdue, {report.items['escalation']} escalations; "
        f"delivered {m.get('reminder', 0)} reminder, {m.get('overdue', 0)} overdue, {m.get('escalation', 0)} escalation messages and {m.get('bulletin', 0)} bulletins to {report.outbox_dir}"))
    if report.verify.ok:
        click.echo(tr(f"审计校验通过：{report.verify.chains} 条链，{report.verify.events} 条记录", f"audit verify OK: {report.verify.chains} chains, {report.verify.events} events"))
    else:
        for p in report.verify.problems:
            click.echo(p.message, err=True)
        raise click.ClickException(tr("审计校验失败", "audit verification failed"))
    click.echo(tr(f"生成的数据文件：{folder}；用时 {time.monotonic() - started:.1f} 秒", f"generated files: {folder}; took {time.monotonic() - started:.1f} s"))


commands = [demo]
