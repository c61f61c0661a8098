"""``rollout regions|schools|progress import``: load the files offices exchange, all or nothing.

A rejected file prints every problem (row, column header as in the file, what is wrong) so the
clerk can fix the file in one go; ``--json`` prints the same as JSON for scripts.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import or_, select

from cli.app import App, dump_json, emit, json_option, pass_app, table
from engine import ImportFileError, NotFound, Region, School, tr
from engine.imports import (
    ImportResult,
    estimate_rows,
    import_progress,
    import_regions,
    import_schools,
    load_mapping,
)

PROGRESS_BAR_FROM = 10_000  # rows; shorter files finish before a bar is worth drawing
KIND_NAMES_ZH = {"regions": "行政区划", "schools": "学校", "progress": "教师学习进度"}
KIND_NAMES_EN = {"regions": "regions", "schools": "schools", "progress": "teacher progress"}

file_argument = click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
mapping_option = click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Column mapping YAML (default: mappings/provincial-platform.yaml).",
)



def summary(result: ImportResult) -> str:
    kind_zh, kind_en = KIND_NAMES_ZH[result.kind], KIND_NAMES_EN[result.kind]
    text = tr(
        f"{kind_zh}导入完成：共 {result.total} 行，新增 {result.inserted}，更新 {result.updated}，未变 {result.unchanged}（{result.source}）",
        f"Imported {kind_en}: {result.total} rows, {result.inserted} inserted, {result.updated} updated, {result.unchanged} unchanged ({result.source})",
    )
    if result.left:
        text += tr(f"；{result.left} 名教师不在完整导出中，已标记为离校", f"; {result.left} teacher(s) absent from the full export marked as left")
    if result.import_id is not None:
        text += tr(f"\n已记录为第 {result.import_id} 次进度导入（截至 {result.as_of}，SHA-256 {result.sha256}）",
                   f"\nrecorded as progress import #{result.import_id} (as of {result.as_of}, SHA-256 {result.sha256})")
    elif result.same_as is not None:
        text += tr(f"\n与第 {result.same_as} 次导入的文件完全相同，未作任何更改，不再记录",
                   f"\nthe same file as progress import #{result.same_as}: nothing changed, not recorded again")
    return text


def _run(kind: str, as_json: bool, work: Callable[[], ImportResult]) -> None:
    try:
        result = work()
    except ImportFileError as exc:
        if not as_json:
            raise  # the CLI shell prints it as a clean message and exits 1
        problems = [
            {"row": p.line, "column": p.column, "header": p.field, "message": p.message}
            for p in exc.problems
        ]
        click.echo(dump_json({"kind": kind, "source": exc.source, "accepted": False, "problems": problems}))
        click.get_current_context().exit(1)
    emit({**asdict(result), "accepted": True}, as_json, lambda: summary(result))


@contextmanager
def _progress_bar(path: Path) -> Iterator[Callable[[int], None] | None]:
    """A progress callback drawing a bar on stderr, or None for short files."""
    estimate = estimate_rows(path)
    if not estimate or estimate < PROGRESS_BAR_FROM:
        yield None
        return
    bar: Any
    with click.progressbar(length=estimate, label=tr("导入中", "Importing"), file=sys.stderr) as bar:
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            bar.update(max(0, min(rows, estimate) - done))
            done = max(done, min(rows, estimate))

        yield advance


# --------------------------------------------------------------------------- regions


@click.group("regions")
@click.pass_context
def regions(ctx: click.Context) -> None:
    """行政区划（GB/T 2260）/ Administrative regions (GB/T 2260 codes)."""


@regions.command("import")
@file_argument
@mapping_option
@json_option
@pass_app
def regions_import(app: App, path: Path, mapping: Path | None, as_json: bool) -> None:
    """Import regions from CSV/XLSX (all or nothing; safe to run again)."""

    def work() -> ImportResult:
        columns = load_mapping(mapping)
        with app.transaction() as session:
            return import_regions(session, path, columns)

    _run("regions", as_json, work)


# --------------------------------------------------------------------------- schools


@click.group("schools")
@click.pass_context
def schools(ctx: click.Context) -> None:
    """学校（学校标识码）/ Schools (10-digit national school identifiers)."""


@schools.command("import")
@file_argument
@mapping_option
@json_option
@pass_app
def schools_import(app: App, path: Path, mapping: Path | None, as_json: bool) -> None:
    """Import schools from CSV/XLSX (all or nothing; safe to run again)."""

    def work() -> ImportResult:
        columns = load_mapping(mapping)
        with app.transaction() as session:
            return import_schools(session, path, columns)

    _run("schools", as_json, work)


@schools.command("list")
@click.option("--region", "region_code", default=None, help="Only schools in this province, city or county (6-digit code).")
@json_option
@pass_app
def schools_list(app: App, region_code: str | None, as_json: bool) -> None:
    """List schools, optionally within one region."""
    with app.sessions() as session:
        query = select(School).order_by(School.county_code, School.code)
        if region_code:
            if session.get(Region, region_code) is None:
                raise NotFound(tr(f"行政区划 {region_code} 不存在", f"no region {region_code}"))
            query = query.where(or_(
                School.county_code == region_code,
                School.city_code == region_code,
                School.province_code == region_code,
            ))
        rows = list(session.scalars(query))
    data = [
        {
            "code": s.code, "name": s.name, "county_code": s.county_code, "city_code": s.city_code,
            "province_code": s.province_code, "kind": s.kind, "rural": s.rural, "pilot": s.pilot,
        }
        for s in rows
    ]
    yes, no = tr("是", "yes"), tr("否", "no")
    emit(data, as_json, lambda: table(
        [tr("学校标识码", "code"), tr("学校名称", "name"), tr("县区", "county"), tr("学段", "kind"),
         tr("农村", "rural"), tr("试点", "pilot")],
        [[s.code, s.name, s.county_code, s.kind, yes if s.rural else no, yes if s.pilot else no] for s in rows],
    ))


# --------------------------------------------------------------------------- progress


@click.group("progress")
@click.pass_context
def progress(ctx: click.Context) -> None:
    """教师学习进度（学时、能力点、测评）/ Teachers' progress: hours, points, assessment."""


@progress.command("import")
@file_argument
@mapping_option
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The date the platform exported the file (default: today by the clock).")
@click.option("--full", is_flag=True, default=False,
              help="The file lists every teacher: mark teachers it omits as left the school (audited).")
@click.option("--actor", envvar="ROLLOUT_ACTOR", default=None,
              help="Your name for the audit trail (default: the login name). Env: ROLLOUT_ACTOR.")
@json_option
@pass_app
def progress_import(app: App, path: Path, mapping: Path | None, as_of: datetime | None, full: bool,
                    actor: str | None, as_json: bool) -> None:
    """Import a platform export of teachers' progress (all or nothing; safe to run again).

    Each import that changes something keeps the teachers' changed figures as of --as-of and is
    recorded in the audit trail with the file's SHA-256."""

    def work() -> ImportResult:
        columns = load_mapping(mapping)
        with _progress_bar(path) as advance:
            return import_progress(app.engine, path, columns, progress=advance, as_of=as_of.date() if as_of else None,
                                   full=full, actor=actor or getpass.getuser(), clock=app.clock,
                                   mapping_name=str(mapping) if mapping else None)

    _run("progress", as_json, work)


commands = [regions, schools, progress]
