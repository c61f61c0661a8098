"""``rollout calendar``: the official working-day calendar that deadlines are counted in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from cli.app import App, emit, json_option, pass_app, table
from engine import tr
from engine.calendar import (
    OFFICIAL,
    calendar_days,
    calendar_years,
    chinesecalendar_years,
    load_calendar,
)
from engine.imports import import_calendar_file, mark_provisional, seed_calendar_changes

WEEKDAYS_ZH = "一二三四五六日"


def _weekday(day: date) -> str:
    return tr(f"周{WEEKDAYS_ZH[day.weekday()]}", day.strftime("%a"))


def _iso_date(_ctx: click.Context, _param: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(tr(f"不是日期（YYYY-MM-DD）：{value}", f"not a date (YYYY-MM-DD): {value}")) from exc


@click.group("calendar")
@click.pass_context
def calendar(ctx: click.Context) -> None:
    """工作日日历（含调休）/ Official working-day calendar (with adjusted working days)."""


@calendar.command("seed")
@click.option("--from", "first", type=int, default=2019, show_default=True, help="First year.")
@click.option("--to", "last", type=int, default=None, help="Last year (default: the last year chinesecalendar knows).")
@pass_app
def seed(app: App, first: int, last: int | None) -> None:
    """Load years from chinesecalendar as official (safe to run again)."""
    if last is None:
        known = chinesecalendar_years()
        last = known[-1] if known else first
    years = list(range(first, last + 1))
    with app.transaction() as session:
        stored, changed = seed_calendar_changes(session, years, app.clock)
        status = {y: (s, src) for y, s, src in calendar_years(session)}
    done = [y for y in years if status.get(y, ("", ""))[1].startswith("chinesecalendar")]
    click.echo(tr(f"已载入 {len(done)} 个年份，共 {stored} 个调整日（节假日与调休上班）",
                  f"Loaded {len(done)} year(s), {stored} adjusted day(s) (holidays and working weekends)")
               + (tr(f"；有变化的年份：{'、'.join(map(str, changed))}。", f"; changed: {', '.join(map(str, changed))}.") if changed
                  else tr("；与已存的日历相同，未做更改。", "; the stored calendar was the same: nothing changed.")))
    for year in years:
        if year not in done:
            kept = status.get(year, (None, None))[0] == OFFICIAL
            click.echo(tr(f"提示：chinesecalendar 没有 {year} 年的数据" + ("，保留已导入的官方安排。" if kept else "，该年按周一至周五暂定，请导入国务院通知。"),
                          f"Note: chinesecalendar has no data for {year}" + ("; the imported notice is kept." if kept else "; it counts Monday–Friday (provisional) until its notice is imported.")),
                       err=True)


@calendar.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--year", type=int, required=True, help="The year the notice is for.")
@pass_app
def import_(app: App, path: Path, year: int) -> None:
    """Import a State Council holiday notice typed as YAML or CSV (all or nothing)."""
    with app.transaction() as session:
        stored = import_calendar_file(session, path, year, app.clock)
    click.echo(tr(f"已导入 {year} 年放假安排（官方），{stored} 个调整日。",
                  f"Imported the {year} arrangement (official): {stored} adjusted day(s)."))


@calendar.command("provisional")
@click.argument("year", type=int)
@pass_app
def provisional(app: App, year: int) -> None:
    """Turn a year back to provisional (Monday–Friday) until its notice is imported."""
    with app.transaction() as session:
        removed = mark_provisional(session, year, app.clock)
    click.echo(tr(f"{year} 年已改为暂定（按周一至周五），删除 {removed} 个调整日；通知发布后请用 rollout calendar import 导入。",
                  f"{year} is provisional again (Monday–Friday), {removed} adjusted day(s) removed; import its notice "
                  "with rollout calendar import once it is published."))


def _source_words(source: str | None) -> str | None:
    """The stored source in the reader's language ("notice file x.yaml" is stored, in English)."""
    if source and source.startswith("notice file "):
        return tr(f"通知文件 {source[len('notice file '):]}", source)
    if source and source.startswith("provisional:"):
        return tr("暂定：按周一至周五，待导入通知", source)
    return source


@calendar.command("show")
@click.argument("year", type=int)
@json_option
@pass_app
def show(app: App, year: int, as_json: bool) -> None:
    """Status of a year, its weekday holidays and its adjusted working days."""
    with app.transaction() as session:
        found = {y: (s, src) for y, s, src in calendar_years(session)}.get(year)
        days = calendar_days(session, year) if found and found[0] == OFFICIAL else []
    status, source = found if found else ("provisional", None)
    data = {
        "year": year,
        "status": status,
        "source": source,
        "holidays": [{"date": d, "name": n} for d, w, n in days if not w],
        "workdays": [{"date": d, "name": n} for d, w, n in days if w],
    }

    def render() -> str:
        label = tr("官方", "official") if status == OFFICIAL else tr("暂定（按周一至周五）", "provisional (Monday–Friday)")
        head = tr(f"{year} 年：{label}", f"{year}: {label}") + (f"  [{_source_words(source)}]" if source else "")
        if not found:
            head += tr("\n尚未导入该年的放假安排。", "\nNo arrangement imported for this year.")
        rows = [(d.isoformat(), _weekday(d), tr("调休上班", "working day") if w else tr("放假", "holiday"), n or "")
                for d, w, n in days]
        if not rows:
            return head
        return head + "\n" + table([tr("日期", "Date"), tr("星期", "Day"), tr("类型", "Kind"), tr("名称", "Name")], rows)

    emit(data, as_json, render)


@calendar.command("workdays", context_settings={"ignore_unknown_options": True})
@click.argument("start", callback=_iso_date)
@click.argument("n", type=int)
@json_option
@pass_app
def workdays(app: App, start: date, n: int, as_json: bool) -> None:
    """The N-th working day after START (before it when N is negative)."""
    with app.transaction() as session:
        cal = load_calendar(session)
    deadline = cal.add_working_days(start, n)
    data = {"start": start, "n": n, "due": deadline.due, "provisional": deadline.provisional}
    emit(data, as_json, lambda: f"{deadline.due.isoformat()} {_weekday(deadline.due)}")
    if deadline.provisional:
        click.echo(tr("警告：所跨年份尚无官方放假安排，按周一至周五暂定计算，通知发布后请重新核对。",
                      "Warning: a year crossed has no official arrangement yet; counted Monday–Friday "
                      "(provisional). Check again once the notice is published."), err=True)


commands = [calendar]
