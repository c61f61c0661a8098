"""The working-day calendar in the database: which years are official, their exception days.

Each year is either *official* (from chinesecalendar or from the State Council's notice typed into
a small file) or *provisional* (Monday–Friday until the notice arrives, see engine.calendar.workdays).
``calendar_day`` holds only the exceptions to Monday–Friday; holidays that fall on a weekend are
validated on import but not stored, because they change nothing. Reading the notice file is
``engine.calendar.notice``; the commands that change the stored calendar are
``engine.imports.calendar``.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, insert, outerjoin, select
from sqlalchemy.orm import Session

from engine.calendar.workdays import WorkCalendar
from engine.clock import Clock
from engine.models import CalendarDay, CalendarYear

OFFICIAL = "official"
PROVISIONAL = "provisional"


# --- database --------------------------------------------------------------------------------


_CACHE = "rollout.calendar"


def replace_year(session: Session, year: int, status: str, source: str, clock: Clock,
                  days: dict[date, tuple[bool, str | None]]) -> bool:
    """Make the stored year equal to ``days``; keep ``imported_at`` when nothing changed.

    Returns whether anything changed. Due dates counted in working days move with the calendar, so
    a caller that changed it re-derives them (``engine.imports.calendar`` does, in the same
    transaction)."""
    session.info.pop(_CACHE, None)
    row = session.get(CalendarYear, year)
    stored = {d.day: (d.workday, d.name) for d in session.scalars(select(CalendarDay).where(CalendarDay.year == year))}
    if row is not None and row.status == status and row.source == source and stored == days:
        return False
    if row is None:
        row = CalendarYear(year=year, status=status, source=source, imported_at=clock.now())
        session.add(row)
    else:
        row.status, row.source, row.imported_at = status, source, clock.now()
    session.flush()
    session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    if days:
        session.execute(insert(CalendarDay), [
            {"day": d, "year": year, "workday": w, "name": n} for d, (w, n) in days.items()
        ])
    return True


def load_calendar(session: Session) -> WorkCalendar:
    """The whole calendar in one query (a few hundred rows per decade), kept for the session's life.

    Every transition re-derives its run's due date, so without the cache each advance would reload
    the calendar; the sessions here live for one command or one web request, and every change of
    the calendar goes through ``replace_year``, which drops the cached copy."""
    cached = session.info.get(_CACHE)
    if isinstance(cached, WorkCalendar):
        return cached
    stmt = select(CalendarYear.year, CalendarYear.status, CalendarDay.day, CalendarDay.workday).select_from(
        outerjoin(CalendarYear, CalendarDay, CalendarDay.year == CalendarYear.year)
    )
    exceptions: dict[date, bool] = {}
    official: set[int] = set()
    for year, status, day, workday in session.execute(stmt):
        if status == OFFICIAL:
            official.add(year)
            if day is not None:
                exceptions[day] = bool(workday)
    session.info[_CACHE] = calendar = WorkCalendar(exceptions, official)
    return calendar


def calendar_years(session: Session) -> list[tuple[int, str, str]]:
    rows = session.execute(select(CalendarYear.year, CalendarYear.status, CalendarYear.source).order_by(CalendarYear.year))
    return [(y, s, src) for y, s, src in rows]


def calendar_days(session: Session, year: int) -> list[tuple[date, bool, str | None]]:
    """The stored exceptions of one year: (day, is working day, festival name)."""
    rows = session.execute(select(CalendarDay.day, CalendarDay.workday, CalendarDay.name)
                           .where(CalendarDay.year == year).order_by(CalendarDay.day))
    return [(d, bool(w), n) for d, w, n in rows]
