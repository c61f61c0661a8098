"""The official working-day calendar (调休 included): arithmetic, the stored years, the yearly notice.

``WorkCalendar`` counts working days; ``load_calendar`` reads the stored one; a year is official
(chinesecalendar or the State Council's notice, ``parse_notice``) or provisional (Monday–Friday,
flagged). Changing the stored calendar is an import: ``engine.imports.seed_calendar`` and friends.
"""

from engine.calendar.notice import CalendarFileError, Notice, parse_notice
from engine.calendar.store import (
    OFFICIAL,
    PROVISIONAL,
    calendar_days,
    calendar_years,
    load_calendar,
)
from engine.calendar.workdays import Deadline, WorkCalendar, chinesecalendar_years, is_weekend

__all__ = [
    "CalendarFileError", "Notice", "parse_notice",
    "OFFICIAL", "PROVISIONAL", "calendar_days", "calendar_years", "load_calendar",
    "Deadline", "WorkCalendar", "chinesecalendar_years", "is_weekend",
]
