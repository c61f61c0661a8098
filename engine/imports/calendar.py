"""Changing the stored working-day calendar: seeding from chinesecalendar, the yearly notice, a year
declared provisional.

Like a progress import, a calendar change is an input that moves derived state: due dates counted
in working days are re-derived (``engine.run_status.refresh``) in the same transaction, so no list
shows a due date the calendar no longer gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from engine.calendar.notice import parse_notice
from engine.calendar.store import OFFICIAL, PROVISIONAL, replace_year
from engine.calendar.workdays import (
    chinesecalendar_name,
    chinesecalendar_version,
    seed_from_chinesecalendar,
)
from engine.clock import Clock
from engine.models import CalendarDay
from engine.run_status import refresh


def _due_dates_moved(session: Session) -> None:
    refresh(session, true(), gates=False, teachers=False)


def seed_calendar(session: Session, years: Iterable[int], clock: Clock) -> int:
    """Load years chinesecalendar knows as official; returns the exception days now stored.

    Years the library lacks are left untouched (an imported notice is never downgraded).
    Running it again changes nothing, not even ``imported_at``.
    """
    return seed_calendar_changes(session, years, clock)[0]


def seed_calendar_changes(session: Session, years: Iterable[int], clock: Clock) -> tuple[int, list[int]]:
    """``seed_calendar``, also returning the years whose stored calendar changed: a second seed
    printed the same line as the first, so nothing said it changed nothing (issue 17, 14)."""
    exceptions, official = seed_from_chinesecalendar(years)
    source = f"chinesecalendar {chinesecalendar_version()}"
    total, changed = 0, []
    for year in sorted(official):
        days = {d: (w, chinesecalendar_name(d)) for d, w in sorted(exceptions.items()) if d.year == year}
        if replace_year(session, year, OFFICIAL, source, clock, days):
            changed.append(year)
        total += len(days)
    if changed:
        _due_dates_moved(session)
    return total, changed


def import_calendar_file(session: Session, path: str | Path, year: int, clock: Clock) -> int:
    """Import a State Council notice for ``year``; all-or-nothing; returns the days stored."""
    notice = parse_notice(path, year)
    days = notice.exceptions()
    if replace_year(session, year, OFFICIAL, f"notice file {Path(path).name}"[:300], clock, days):
        _due_dates_moved(session)
    return len(days)


def mark_provisional(session: Session, year: int, clock: Clock) -> int:
    """Declare a year provisional (Monday–Friday); its stored exceptions are removed.

    Returns how many days were removed. To make the year official again, import its notice.
    """
    removed = len(session.scalars(select(CalendarDay.day).where(CalendarDay.year == year)).all())
    if replace_year(session, year, PROVISIONAL, "provisional: Monday–Friday until the notice is imported", clock, {}):
        _due_dates_moved(session)
    return removed
