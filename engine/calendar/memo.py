"""The official calendar, remembered: a province's forecast and the status refresh after an
import ask the same few questions 50,000 times ("working days from today to 2022-05-31", "today +
37 working days"), and each answer walks the calendar day by day (``workdays``) — ~0.15 ms, i.e.
~30 s of a province's forecast, ~1 s of a refresh. The answers are the calendar's, computed once
per question.
"""

from __future__ import annotations

from datetime import date

from engine.calendar.workdays import Deadline, WorkCalendar


class MemoCalendar(WorkCalendar):
    """A ``WorkCalendar`` whose working-day counts and offsets are computed once per argument."""

    def __init__(self, base: WorkCalendar):
        self.__dict__.update(base.__dict__)
        self._between: dict[tuple[date, date], int] = {}
        self._after: dict[tuple[date, int], Deadline] = {}

    def working_days_between(self, a: date, b: date) -> int:
        key = (a, b)
        found = self._between.get(key)
        if found is None:
            found = self._between[key] = super().working_days_between(a, b)
        return found

    def add_working_days(self, start: date, n: int) -> Deadline:
        key = (start, n)
        found = self._after.get(key)
        if found is None:
            found = self._after[key] = super().add_working_days(start, n)
        return found


def remembered(calendar: WorkCalendar) -> WorkCalendar:
    """``calendar`` with memory (itself if it already has it)."""
    return calendar if isinstance(calendar, MemoCalendar) else MemoCalendar(calendar)
