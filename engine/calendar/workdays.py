"""The official Chinese working-day calendar and deadline arithmetic (pure logic, no database).

Deadlines in workflows and plans are often "N working days after" something. In China a working
day is not simply Monday–Friday: each year the State Council publishes a notice that turns some
weekdays into public holidays and some Saturdays/Sundays into working days (调休上班). This module
turns such a year's exceptions into date arithmetic.

Definitions (used everywhere a deadline is counted):

* "N working days after D" is the N-th working day strictly after D; N = 0 gives D itself, even
  if D is not a working day (nothing was counted).
* "N working days before D" (negative N) is the |N|-th working day strictly before D.
* ``working_days_between(a, b)`` counts the working days in (a, b] when a <= b, and minus the
  working days in [b, a) when b < a, so ``working_days_between(d, add_working_days(d, n).due) == n``.

A year is *official* when its notice has been loaded. For any other year the calendar falls back
to Monday–Friday and marks every deadline that crosses it as provisional, instead of failing: the
notice for next year usually appears only in November, and plans are written before that.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate

SATURDAY = 5


@dataclass(frozen=True)
class Deadline:
    """A computed due date; ``provisional`` means a year it crossed had no official calendar."""

    due: date
    provisional: bool


def is_weekend(day: date) -> bool:
    return day.weekday() >= SATURDAY


class WorkCalendar:
    """Working days = Monday–Friday, corrected by the official exceptions of official years.

    ``exceptions`` maps a date to whether it is a working day; only days that differ from
    Monday–Friday matter (weekday holidays → False, 调休 working weekends → True). Exceptions that
    fall in years not in ``official_years`` are ignored, so a half-typed or guessed year can never
    silently shift a deadline.
    """

    def __init__(self, exceptions: Mapping[date, bool], official_years: set[int]):
        self._official = frozenset(official_years)
        self._exceptions = {d: w for d, w in exceptions.items() if d.year in self._official}
        # For counting in O(log n): each exception's ordinal and the running sum of how it differs
        # from Monday–Friday (+1 a 调休 working weekend, -1 a weekday holiday). A province's
        # forecast counts 50,000 schools' stage durations; a day-by-day loop took 15 s of it.
        ordered = sorted(self._exceptions.items())
        self._ordinals = [d.toordinal() for d, _ in ordered]
        self._shift = [0, *accumulate(int(w) - int(not is_weekend(d)) for d, w in ordered)]
        self._closed = sum(not w and not is_weekend(d) for d, w in ordered)  # weekday holidays

    @property
    def fingerprint(self) -> int:
        """Equal for calendars that count every day alike (what a cache of counts is keyed on)."""
        return hash((self._official, tuple(self._ordinals), tuple(self._shift)))

    @property
    def official_years(self) -> frozenset[int]:
        return self._official

    def is_official(self, year: int) -> bool:
        return year in self._official

    def is_workday(self, day: date) -> bool:
        found = self._exceptions.get(day)
        if found is not None:
            return found
        return not is_weekend(day)

    def exceptions(self, year: int) -> dict[date, bool]:
        """The official exceptions of one year (empty for a provisional year)."""
        return {d: w for d, w in sorted(self._exceptions.items()) if d.year == year}

    def _provisional(self, first: date, last: date) -> bool:
        return any(y not in self._official for y in range(first.year, last.year + 1))

    def add_working_days(self, start: date, n: int) -> Deadline:
        """The n-th working day strictly after ``start`` (before it when n < 0); n = 0 → start.

        Found in O(log n) as the first day whose count of working days since 0001-01-01 reaches
        the target: a province's forecast asks this of every school's dates (a day-by-day walk
        was a sixth of its model's time)."""
        if n == 0:
            return Deadline(start, False)
        at = start.toordinal()
        # n > 0: the day the count reaches W(start) + n; n < 0: the working day before ``start``
        # whose count is W(start - 1) + n + 1 (the |n|-th counting back).
        target = self._workdays_through(at) + n if n > 0 else self._workdays_through(at - 1) + n + 1
        # Any 7 consecutive days hold 5 weekdays, and at most ``_closed`` of all weekdays are
        # holidays, so |n| working days lie within this many days (a bound, not a guess: no loop
        # that could run on, which matters to a mutation run as much as to a wrong calendar).
        reach = 7 * (abs(n) + self._closed) // 5 + 7
        days = range(at + 1, at + reach + 1) if n > 0 else range(at - reach, at)
        found = bisect_left(days, target, key=self._workdays_through)
        day = date.fromordinal(days[found])
        first, last = (start, day) if n > 0 else (day, start)
        return Deadline(day, self._provisional(first, last))

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b], negated for b < a: the inverse of :meth:`add_working_days`."""
        if b < a:
            # working days in [b, a) == working days in (b - 1, a - 1]
            one = timedelta(days=1)
            return -self.working_days_between(b - one, a - one)
        return self._workdays_through(b.toordinal()) - self._workdays_through(a.toordinal())

    def _workdays_through(self, ordinal: int) -> int:
        """Working days from 0001-01-01 (a Monday, ordinal 1) to the day ``ordinal``, inclusive."""
        weekdays = ordinal // 7 * 5 + min(ordinal % 7, 5)
        return weekdays + self._shift[bisect_right(self._ordinals, ordinal)]

    def add_days(self, start: date, n: int) -> Deadline:
        """Calendar days: never provisional, the official calendar does not matter."""
        return Deadline(start + timedelta(days=n), False)


# --- chinesecalendar -------------------------------------------------------------------------


def _supported(year: int) -> bool:
    """chinesecalendar raises NotImplementedError outside its data (LIBRARY-NOTES)."""
    import chinese_calendar

    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def chinesecalendar_years(probe: range = range(1990, 2101)) -> list[int]:
    """The years the installed chinesecalendar has data for, found by asking, not hard-coded."""
    return [y for y in probe if _supported(y)]


def chinesecalendar_version() -> str:
    import chinese_calendar

    return str(getattr(chinese_calendar, "__version__", "unknown"))


def _days_of(year: int) -> Iterable[date]:
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += timedelta(days=1)


def seed_from_chinesecalendar(years: Iterable[int]) -> tuple[dict[date, bool], set[int]]:
    """Exceptions and official years from chinesecalendar; years it lacks are left out.

    Years the library does not know are simply absent from ``official_years``, so the calendar
    built from the result treats them as provisional (Monday–Friday) rather than crashing.
    """
    import chinese_calendar

    exceptions: dict[date, bool] = {}
    official: set[int] = set()
    for year in sorted(set(years)):
        if not _supported(year):
            continue
        official.add(year)
        for day in _days_of(year):
            workday = bool(chinese_calendar.is_workday(day))
            if workday == is_weekend(day):
                exceptions[day] = workday
    return exceptions, official


def chinesecalendar_name(day: date) -> str | None:
    """Chinese name of the festival a holiday or 调休 working day belongs to (e.g. 春节)."""
    import chinese_calendar
    from chinese_calendar.constants import Holiday

    _, english = chinese_calendar.get_holiday_detail(day)
    if english is None:
        return None
    try:
        return str(Holiday(english).chinese)
    except ValueError:
        return str(english)
