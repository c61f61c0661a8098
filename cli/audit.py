"""``rollout audit``: read, export and verify the audit trail; sign and check checkpoints.

Times are typed and shown in local time (Asia/Shanghai) and stored in UTC. ``verify`` exits 1 when
anything is wrong so a nightly job can alert on it.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import click

from cli.app import App, dump_json, json_option, pass_app, table
from engine import StateReport, event_cells, parse_timestamp, tr, verify_state, write_csv
from engine.audit import (
    CheckpointReport,
    VerifyReport,
    export_json,
    generate_key,
    headers,
    list_events,
    make_checkpoint,
    verify_chains,
    verify_checkpoint,
    write_checkpoint,
)


@click.group("audit")
@click.pass_context
def audit(ctx: click.Context) -> None:
    """审计记录：查询、导出、校验、检查点 / Audit trail: list, export, verify, checkpoints."""


def _moment(value: str | None, *, end: bool) -> datetime | None:
    """ISO date or date-time, local Asia/Shanghai without an offset; a bare ``--until`` date includes that day."""
    if value is None:
        return None
    try:
        if end and len(value.strip()) == 10:
            day = date.fromisoformat(value.strip()) + timedelta(days=1)
            return parse_timestamp(day.isoformat())
        return parse_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(
            tr(f"不是日期或时间（ISO 格式）：{value}", f"not an ISO date or date-time: {value}"),
            param_hint="--until" if end else "--since",
        ) from exc


def _filters(func: Any) -> Any:
    options = [
        click.option("--school", help="School code (10 digits)."),
        click.option("--region", help="Region code (6 digits); includes every school below it."),
        click.option("--actor", help="Who acted."),
        click.option("--trigger", help="Trigger name (advance, override, extend …)."),
        click.option("--since", help="From this ISO date/time (inclusive; local time unless an offset is given)."),
        click.option("--until", help="Up to this ISO date/time (a bare date includes that whole day)."),
        click.option("--limit", type=click.IntRange(min=1), help="At most this many events."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _query(app: App, filters: dict[str, Any]) -> tuple[list[Any], list[list[Any]]]:
    """The events, and their table cells with roles, actions and stages in the workflow's words."""
    since = _moment(filters.pop("since"), end=False)
    until = _moment(filters.pop("until"), end=True)
    with app.sessions() as session:
        rows = list_events(session, since=since, until=until, **filters)
        return rows, event_cells(session, rows)


@audit.command("list")
@_filters
@json_option
@pass_app
def list_(app: App, as_json: bool, **filters: Any) -> None:
    """List audit events, oldest first."""
    rows, worded = _query(app, filters)
    if as_json:
        click.echo(dump_json([r.as_dict() for r in rows]))
        return
    shown = [c[:3] + c[4:10] for c in worded]
    names = headers()
    click.echo(table(names[:3] + names[4:10], shown))


def _write(rows: list[Any], worded: list[list[Any]], fmt: str, stream: TextIO) -> None:
    if fmt == "csv":
        write_csv(stream, headers(), worded)  # engine.export: BOM, CRLF, formulas neutralised
    elif fmt == "json":
        export_json(rows, stream)
    else:
        stream.write(table(headers(), worded) + "\n")
    stream.flush()


@audit.command("export")
@_filters
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "table"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@pass_app
def export(app: App, fmt: str, output: Path | None, **filters: Any) -> None:
    """Export audit events: CSV for Excel (UTF-8 with BOM, Chinese headers), JSON or a table."""
    rows, worded = _query(app, filters)
    if output is None:
        _write(rows, worded, fmt, sys.stdout)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(tr(f"无法创建文件夹 {output.parent}：{exc.strerror}",
                                      f"cannot create the folder {output.parent}: {exc.strerror}")) from exc
    with output.open("w", encoding="utf-8", newline="") as stream:
        _write(rows, worded, fmt, stream)
    if output:
        click.echo(tr(f"已导出 {len(rows)} 条到 {output}", f"Exported {len(rows)} event(s) to {output}"), err=True)


def _print_verify(report: VerifyReport, checked: CheckpointReport | None, state: StateReport | None = None) -> None:
    click.echo(tr(f"已校验 {report.chains} 条链、{report.events} 条记录", f"Checked {report.chains} chain(s), {report.events} event(s)"))
    for problem in report.problems:
        click.echo(f"  ✗ [{problem.kind}] {problem.message}")
    if state is not None:
        click.echo(tr(f"已核对 {state.runs} 所学校的状态与其审计记录一致", f"Checked {state.runs} school run(s) against their events")
                   if state.ok else tr(f"已核对 {state.runs} 所学校：数据库状态与审计记录不符", f"Checked {state.runs} school run(s): the database disagrees with its events"))
        for p in state.problems:
            click.echo(f"  ✗ [{p.kind}] {p.message}")
    if checked is not None:
        click.echo(tr(
            f"检查点（{checked.created_at}，{checked.chains} 条链、{checked.events} 条记录）",
            f"Checkpoint ({checked.created_at}, {checked.chains} chain(s), {checked.events} event(s))",
        ))
        for cp in checked.problems:
            click.echo(f"  ✗ [{cp.kind}] {cp.message}")
    ok = report.ok and (checked is None or checked.ok) and (state is None or state.ok)
    click.echo(tr("通过：审计记录完整，数据库状态与之一致", "OK: the audit trail is intact and the database agrees with it") if ok
               else tr("未通过：审计记录或数据库状态被改动", "FAILED: the audit trail or the database state was tampered with"))


@audit.command("verify")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A signed checkpoint file to check against.")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The public key that signed it.")
@json_option
@pass_app
@click.pass_context
def verify(ctx: click.Context, app: App, checkpoint: Path | None, public_key: Path | None, as_json: bool) -> None:
    """Recompute every chain, check the database's state against it (and a checkpoint); exit 1 naming
    the first bad event per chain and the first disagreement per school."""
    if (checkpoint is None) != (public_key is None):
        raise click.UsageError(tr("--checkpoint 与 --public-key 须同时给出", "--checkpoint and --public-key go together"))
    report = verify_chains(app.engine)
    checked = None
    with app.sessions() as session:
        state = verify_state(session)
        if checkpoint is not None and public_key is not None:
            checked = verify_checkpoint(session, checkpoint, public_key)
    ok = report.ok and state.ok and (checked is None or checked.ok)
    if as_json:
        click.echo(dump_json({"chains": report, "state": state, "checkpoint": checked, "ok": ok}))
    else:
        _print_verify(report, checked, state)
    if not ok:
        ctx.exit(1)


@audit.command("checkpoint")
@click.option("--key", "key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Private key (PEM).")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Checkpoint file to write (never overwritten).")
@pass_app
@click.pass_context
def checkpoint(ctx: click.Context, app: App, key: Path, output: Path) -> None:
    """Sign the head of every chain; archive or mail the file outside the database."""
    report = verify_chains(app.engine)
    if not report.ok:
        _print_verify(report, None)
        click.echo(tr("审计记录已被改动，拒绝为其签名", "The audit trail was tampered with; refusing to sign it"), err=True)
        ctx.exit(1)
    with app.sessions() as session:
        signed = make_checkpoint(session, key, app.clock)
    write_checkpoint(output, signed)
    click.echo(tr(
        f"已写入检查点 {output}：{signed['chains']} 条链、{signed['events']} 条记录，根 {signed['root']}",
        f"Wrote checkpoint {output}: {signed['chains']} chain(s), {signed['events']} event(s), root {signed['root']}",
    ))


@audit.command("keygen")
@click.option("--private", "private", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Private key file to create (mode 0600).")
@click.option("--public", "public", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Public key file to create.")
def keygen(private: Path, public: Path) -> None:
    """Create an Ed25519 key pair for signing checkpoints (never overwrites)."""
    fp = generate_key(private, public)
    click.echo(tr(f"已生成密钥，指纹 {fp}；请妥善保管私钥 {private}", f"Key pair created, fingerprint {fp}; keep {private} safe"))


commands = [audit]
