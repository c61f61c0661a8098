from datetime import date, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest
from chinese_calendar.constants import Holiday
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import (
    CalendarFileError,
    calendar_days,
    calendar_years,
    load_calendar,
    parse_notice,
)
from engine.calendar.workdays import seed_from_chinesecalendar
from engine.clock import FixedClock
from engine.db import transaction
from engine.imports import import_calendar_file, mark_provisional, seed_calendar
from engine.models import CalendarDay, CalendarYear

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "docs" / "examples" / "calendar-2026.yaml"

NOTICE_2027 = """\
# 2027 arrangement, typed by the county office
year: 2027
holidays:
  - 元旦 2027-01-01..2027-01-03
  - name: 春节
    from: 2027-02-06
    to: 2027-02-12
workdays:
  - 2027-02-14 春节
  - date: 2027-02-20
    name: 春节
"""


def _write(tmp_path: Path, text: str, name: str = "notice.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _snapshot(session: Session) -> tuple[list[Any], list[Any]]:
    years = session.execute(select(CalendarYear.year, CalendarYear.status, CalendarYear.source,
                                   CalendarYear.imported_at).order_by(CalendarYear.year)).all()
    days = session.execute(select(CalendarDay.day, CalendarDay.year, CalendarDay.workday,
                                  CalendarDay.name).order_by(CalendarDay.day)).all()
    return list(years), list(days)


def test_seed_is_idempotent(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        first = seed_calendar(s, range(2020, 2023), clock)
    with transaction(factory) as s:
        before = _snapshot(s)
    clock.advance(timedelta(days=3))
    with transaction(factory) as s:
        again = seed_calendar(s, range(2020, 2023), clock)
    with transaction(factory) as s:
        assert _snapshot(s) == before  # imported_at unchanged too
        assert calendar_years(s) == [(y, "official", f"chinesecalendar {chinese_calendar.__version__}")
                                     for y in (2020, 2021, 2022)]
        stored = s.scalar(select(func.count()).select_from(CalendarDay))
    assert first == again == stored
    exceptions, _ = seed_from_chinesecalendar(range(2020, 2023))
    assert stored == len(exceptions)


def test_seeded_calendar_loads_with_names(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        seed_calendar(s, [2021], clock)
    with transaction(factory) as s:
        days = dict((d, (w, n)) for d, w, n in calendar_days(s, 2021))
        cal = load_calendar(s)
    assert days[date(2021, 9, 18)] == (True, "中秋")
    assert days[date(2021, 10, 1)] == (False, "国庆节")
    assert cal.is_workday(date(2021, 9, 18)) and not cal.is_workday(date(2021, 10, 7))
    assert cal.official_years == {2021}


def test_load_calendar_is_one_query(db: Engine, factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        seed_calendar(s, range(2019, 2027), clock)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db, "before_cursor_execute", count)
    try:
        with factory() as s:
            cal = load_calendar(s)
    finally:
        event.remove(db, "before_cursor_execute", count)
    assert len([x for x in statements if x.lstrip().upper().startswith("SELECT")]) == 1
    assert cal.official_years == set(range(2019, 2027))


def test_example_2026_reads_back_identical_to_chinesecalendar() -> None:
    notice = parse_notice(EXAMPLE, 2026)
    expected_off = {d: Holiday(n).chinese for d, n in chinese_calendar.holidays.items() if d.year == 2026}
    expected_on = {d: Holiday(n).chinese for d, n in chinese_calendar.workdays.items() if d.year == 2026}
    assert notice.holiday_days() == expected_off
    assert {w.day: w.name for w in notice.workdays} == expected_on
    exceptions, _ = seed_from_chinesecalendar([2026])
    assert {d: w for d, (w, _) in notice.exceptions().items()} == exceptions


def test_importing_the_example_equals_seeding(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        assert import_calendar_file(s, EXAMPLE, 2026, clock) == 25
    with transaction(factory) as s:
        imported = calendar_days(s, 2026)
        assert calendar_years(s) == [(2026, "official", "notice file calendar-2026.yaml")]
    with transaction(factory) as s:
        seed_calendar(s, [2026], clock)
        assert calendar_days(s, 2026) == imported


def test_import_a_new_year_makes_it_official(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed_calendar(s, [2026, 2027], clock)  # the library has no 2027: nothing stored
        assert [y for y, *_ in calendar_years(s)] == [2026]
        assert not load_calendar(s).is_official(2027)
        # weekdays of 元旦 (Fri 1 Jan) and 春节 (Mon 8 – Fri 12 Feb); 14 and 20 Feb are weekends
        assert import_calendar_file(s, _write(tmp_path, NOTICE_2027), 2027, clock) == 8
    with transaction(factory) as s:
        cal = load_calendar(s)
        seed_calendar(s, [2027], clock)  # must not downgrade the imported year
        assert calendar_years(s)[-1] == (2027, "official", "notice file notice.yaml")
    assert cal.is_official(2027)
    assert not cal.is_workday(date(2027, 2, 8))
    assert cal.is_workday(date(2027, 2, 20))
    deadline = cal.add_working_days(date(2027, 2, 5), 1)
    assert deadline.due == date(2027, 2, 14) and not deadline.provisional


def test_csv_notice(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    text = "类型,名称,开始,结束\n放假,春节,2027-02-06,2027-02-12\nworkday,春节,2027-02-14,\n"
    with transaction(factory) as s:
        assert import_calendar_file(s, _write(tmp_path, text, "n.csv"), 2027, clock) == 6
        assert (date(2027, 2, 14), True, "春节") in calendar_days(s, 2027)


BAD = """\
year: 2027
holidays:
  - 春节 2027-02-06..2027-02-12
  - name: 国庆节
    from: 2027-10-01
    to: 2027-09-30
  - 清明 2028-04-05
  - 2027-05-01
  - name: 劳动节
    from: 2027-05-01
    to: 2027-05-0x
  - 除夕 2027-02-05..2027-02-07
workdays:
  - 2027-02-07 春节
  - 2027-02-15
  - 2027-02-20 春节
  - 2027-02-20 春节
  - date: 2027-02-21
    colour: red
mood: festive
"""


def test_every_bad_entry_is_reported_with_its_line_and_nothing_written(
    factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path
) -> None:
    with transaction(factory) as s:
        seed_calendar(s, [2026], clock)
        before = _snapshot(s)
    path = _write(tmp_path, BAD)
    with pytest.raises(CalendarFileError) as err, transaction(factory) as s:
        import_calendar_file(s, path, 2027, clock)
    found = {(p.line, p.field) for p in err.value.problems}
    assert found == {
        (6, "holidays[1].to"),  # ends before it starts
        (7, "holidays[2].from"),  # 2028 is not 2027
        (8, "holidays[3].name"),  # a bare date has no name
        (11, "holidays[4].to"),  # not a date
        (12, "holidays"),  # overlaps 春节 on line 3
        (14, "workdays"),  # inside 春节 (and a weekday)
        (15, "workdays[1].date"),  # Monday: not a weekend
        (17, "workdays"),  # the same day twice
        (19, "workdays[4].colour"),
        (20, "mood"),
    }
    assert all(p.source == str(path) for p in err.value.problems)
    assert "第 3 行" in next(p.message for p in err.value.problems if p.line == 12)
    with transaction(factory) as s:
        assert _snapshot(s) == before


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("year: 2026\nholidays:\n  - 元旦 2027-01-01\n", 1, "year"),
        ("year: 2027\nholidays: [元旦 2027-01-01\n", 3, None),  # YAML syntax error
        ("year: 2027\n", 1, "holidays"),
        ("- 元旦 2027-01-01\n", 1, None),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, line: int, field: str | None) -> None:
    with pytest.raises(CalendarFileError) as err:
        parse_notice(_write(tmp_path, text), 2027)
    assert [(p.line, p.field) for p in err.value.problems] == [(line, field)]


def test_csv_problems_carry_row_lines(tmp_path: Path) -> None:
    text = "kind,name,from,to\nholiday,春节,2027-02-06,2027-02-12\nrest,x,2027-03-01,\nworkday,春节,2027-02-17,2027-02-18\n"
    with pytest.raises(CalendarFileError) as err:
        parse_notice(_write(tmp_path, text, "n.csv"), 2027)
    assert sorted((p.line, p.field) for p in err.value.problems) == [(3, "kind"), (4, "from"), (4, "to")]


def test_mark_provisional_drops_the_exceptions(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        seed_calendar(s, [2021, 2022], clock)
        assert mark_provisional(s, 2022, clock) > 0
        mark_provisional(s, 2030, clock)
    with transaction(factory) as s:
        statuses = {y: st for y, st, _ in calendar_years(s)}
        cal = load_calendar(s)
        assert calendar_days(s, 2022) == []
    assert statuses == {2021: "official", 2022: "provisional", 2030: "provisional"}
    assert cal.official_years == {2021}
    assert cal.add_working_days(date(2022, 1, 28), 1).provisional


def test_chinese_keys_and_range_separators(tmp_path: Path) -> None:
    text = ("年份: 2027\n放假:\n  - 名称: 春节\n    开始: 2027-02-06\n    结束: 2027-02-12\n"
            "  - 劳动节 2027-05-01至2027-05-05\n  - 国庆节 2027-10-01~2027-10-07\n调休上班:\n  - 日期: 2027-02-14\n")
    notice = parse_notice(_write(tmp_path, text), 2027)
    assert [(h.name, h.start, h.end) for h in notice.holidays] == [
        ("春节", date(2027, 2, 6), date(2027, 2, 12)),
        ("劳动节", date(2027, 5, 1), date(2027, 5, 5)),
        ("国庆节", date(2027, 10, 1), date(2027, 10, 7)),
    ]
    assert [(w.day, w.name) for w in notice.workdays] == [(date(2027, 2, 14), None)]


def test_the_yaml_shown_in_docs_is_accepted(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "calendar.md").read_text(encoding="utf-8")
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    notice = parse_notice(_write(tmp_path, block), 2027)
    assert len(notice.holidays) == 3 and len(notice.workdays) == 2
