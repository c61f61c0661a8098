from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar.workdays import (
    Deadline,
    WorkCalendar,
    chinesecalendar_name,
    chinesecalendar_version,
    chinesecalendar_years,
    seed_from_chinesecalendar,
)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    exceptions, official = seed_from_chinesecalendar(range(2019, 2029))
    return WorkCalendar(exceptions, official)


def test_adjusted_weekend_before_mid_autumn_2021_is_a_working_day(cal: WorkCalendar) -> None:
    assert date(2021, 9, 18).weekday() == 5
    assert cal.is_workday(date(2021, 9, 18))
    assert not cal.is_workday(date(2021, 9, 20))  # Monday, Mid-Autumn holiday
    assert not cal.is_workday(date(2021, 9, 25))  # an ordinary Saturday


def test_national_day_2021_is_a_week_off(cal: WorkCalendar) -> None:
    assert [cal.is_workday(date(2021, 10, d)) for d in range(1, 8)] == [False] * 7
    assert cal.is_workday(date(2021, 10, 9))  # Saturday 调休上班
    assert cal.is_workday(date(2021, 10, 8))


def test_add_working_days_across_national_day(cal: WorkCalendar) -> None:
    # Thu 30 Sep → Fri 8 Oct (1), Sat 9 Oct (2, adjusted), Mon 11 Oct (3)
    assert cal.add_working_days(date(2021, 9, 30), 1) == Deadline(date(2021, 10, 8), False)
    assert cal.add_working_days(date(2021, 9, 30), 2) == Deadline(date(2021, 10, 9), False)
    assert cal.add_working_days(date(2021, 9, 30), 3) == Deadline(date(2021, 10, 11), False)
    assert cal.working_days_between(date(2021, 9, 30), date(2021, 10, 11)) == 3


def test_zero_days_is_the_anchor_itself_even_on_a_holiday(cal: WorkCalendar) -> None:
    assert cal.add_working_days(date(2021, 10, 3), 0) == Deadline(date(2021, 10, 3), False)


def test_negative_counts_go_backwards_strictly_before(cal: WorkCalendar) -> None:
    # the working day before Fri 8 Oct 2021 is Thu 30 Sep
    assert cal.add_working_days(date(2021, 10, 8), -1).due == date(2021, 9, 30)
    assert cal.working_days_between(date(2021, 10, 8), date(2021, 9, 30)) == -1


def test_year_without_notice_falls_back_to_monday_friday_and_is_flagged(cal: WorkCalendar) -> None:
    assert 2026 in chinesecalendar_years() and 2028 not in chinesecalendar_years()
    assert not cal.is_official(2028)
    assert cal.is_official(2026)
    # 2028-01-03 is a Monday: with no notice it is simply a working day
    assert cal.is_workday(date(2028, 1, 3))
    assert not cal.is_workday(date(2028, 1, 1))  # Saturday
    got = cal.add_working_days(date(2027, 12, 31), 1)  # Fri → Mon 3 Jan 2028
    assert got == Deadline(date(2028, 1, 3), True)
    # crossing a provisional year on the way is enough to be provisional
    assert cal.add_working_days(date(2026, 12, 30), 3).provisional
    assert not cal.add_working_days(date(2026, 9, 30), 3).provisional


def test_exceptions_of_a_non_official_year_are_ignored() -> None:
    guessed = {date(2027, 2, 8): False}  # a Monday someone guessed as a holiday
    cal = WorkCalendar(guessed, official_years=set())
    assert cal.is_workday(date(2027, 2, 8))
    assert cal.exceptions(2027) == {}
    assert WorkCalendar(guessed, {2027}).is_workday(date(2027, 2, 8)) is False


def test_add_days_is_calendar_days_and_never_provisional(cal: WorkCalendar) -> None:
    assert cal.add_days(date(2027, 12, 25), 10) == Deadline(date(2028, 1, 4), False)


def test_seed_keeps_only_exceptions_to_monday_friday() -> None:
    exceptions, official = seed_from_chinesecalendar([2021, 2099])
    assert official == {2021}
    assert exceptions[date(2021, 9, 18)] is True
    assert exceptions[date(2021, 10, 1)] is False
    assert date(2021, 10, 2) not in exceptions  # Saturday holiday: no difference
    assert date(2021, 6, 1) not in exceptions  # ordinary Tuesday
    assert all(d.weekday() >= 5 for d, w in exceptions.items() if w)
    assert all(d.weekday() < 5 for d, w in exceptions.items() if not w)


def test_festival_names_are_chinese() -> None:
    assert chinesecalendar_name(date(2021, 10, 1)) == "国庆节"
    assert chinesecalendar_name(date(2021, 9, 18)) == "中秋"
    assert chinesecalendar_name(date(2021, 6, 1)) is None


dates = st.dates(min_value=date(2019, 1, 1), max_value=date(2028, 6, 30))


@settings(max_examples=200, deadline=None)
@given(start=dates, n=st.integers(min_value=1, max_value=60))
def test_add_working_days_lands_on_a_working_day_n_days_on(cal: WorkCalendar, start: date, n: int) -> None:
    due = cal.add_working_days(start, n).due
    assert due > start
    assert cal.is_workday(due)
    assert cal.working_days_between(start, due) == n
    # and it is the first such day: one day earlier counts one fewer
    assert cal.working_days_between(start, due - timedelta(days=1)) == n - 1


@settings(max_examples=200, deadline=None)
@given(start=dates, n=st.integers(min_value=-60, max_value=60))
def test_between_inverts_add_in_both_directions(cal: WorkCalendar, start: date, n: int) -> None:
    deadline = cal.add_working_days(start, n)
    assert cal.working_days_between(start, deadline.due) == n
    crossed = range(min(start, deadline.due).year, max(start, deadline.due).year + 1)
    assert deadline.provisional == (n != 0 and any(not cal.is_official(y) for y in crossed))


def _count_day_by_day(cal: WorkCalendar, a: date, b: date) -> int:
    """The definition, counted one day at a time: working days in (a, b], minus those in [b, a)."""
    if a <= b:
        return sum(cal.is_workday(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))
    return -sum(cal.is_workday(b + timedelta(days=i)) for i in range((a - b).days))


@settings(max_examples=300, deadline=None)
@given(a=dates, b=dates)
def test_between_equals_counting_day_by_day(cal: WorkCalendar, a: date, b: date) -> None:
    assert cal.working_days_between(a, b) == _count_day_by_day(cal, a, b)


@settings(max_examples=200, deadline=None)
@given(a=dates, b=dates, marks=st.dictionaries(dates, st.booleans(), max_size=30))
def test_between_counts_any_exceptions_including_redundant_ones(a: date, b: date, marks: dict[date, bool]) -> None:
    """Exceptions may repeat what Monday–Friday already says (a weekday marked working); years not
    official are ignored either way."""
    cal = WorkCalendar(marks, official_years={2020, 2021, 2022, 2025})
    assert cal.working_days_between(a, b) == _count_day_by_day(cal, a, b)


def _walk(cal: WorkCalendar, start: date, n: int) -> date:
    """The definition: step a day at a time, counting working days, until the n-th."""
    day, step = start, timedelta(days=1 if n > 0 else -1)
    for _ in range(abs(n)):
        day += step
        while not cal.is_workday(day):
            day += step
    return day


@settings(max_examples=200, deadline=None)
@given(start=dates, n=st.integers(min_value=-400, max_value=400).filter(bool),
       marks=st.dictionaries(dates, st.booleans(), max_size=30))
def test_add_working_days_equals_stepping_day_by_day(start: date, n: int, marks: dict[date, bool]) -> None:
    cal = WorkCalendar(marks, official_years={2020, 2021, 2022, 2025})
    assert cal.add_working_days(start, n).due == _walk(cal, start, n)


def test_a_holiday_longer_than_any_the_state_council_gave_is_still_crossed() -> None:
    """A calendar whose office closed for the whole of 2021's first quarter (an imported calendar
    may say so): one working day after New Year's Eve is 2021-04-01, and one before it, counting
    back from April, is 2020-12-31."""
    closed = {date(2021, 1, 1) + timedelta(days=i): False for i in range(90)}
    cal = WorkCalendar(closed, official_years={2021})
    assert cal.add_working_days(date(2020, 12, 31), 1).due == date(2021, 4, 1)
    assert cal.add_working_days(date(2021, 4, 1), -1).due == date(2020, 12, 31)
    assert cal.add_working_days(date(2021, 4, 1), -2).due == date(2020, 12, 30)


# --- Issue 13: rules mutation testing found unasserted ---

def test_a_years_exceptions_are_that_years_only() -> None:
    exceptions, official = seed_from_chinesecalendar([2021, 2022])
    cal = WorkCalendar(exceptions, official)
    of_2021 = cal.exceptions(2021)
    assert of_2021 and {d.year for d in of_2021} == {2021}
    assert of_2021[date(2021, 10, 1)] is False and of_2021[date(2021, 9, 18)] is True
    assert date(2022, 1, 31) not in of_2021 and cal.exceptions(2022)[date(2022, 1, 31)] is False  # 春节 2022
    assert list(of_2021) == sorted(of_2021)  # in date order, as the calendar page lists them


def test_a_year_the_library_lacks_does_not_stop_the_years_after_it() -> None:
    """LIBRARY-NOTES: chinesecalendar has no data before 2004; asking for 2003 and 2021 seeds 2021."""
    exceptions, official = seed_from_chinesecalendar([2003, 2021])
    assert official == {2021}
    assert exceptions[date(2021, 10, 1)] is False


def test_a_library_build_without_a_version_is_named_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeded years' source reads "chinesecalendar <version>"; a build without one still says so."""
    import chinese_calendar

    assert chinesecalendar_version() == chinese_calendar.__version__
    monkeypatch.delattr(chinese_calendar, "__version__")
    assert chinesecalendar_version() == "unknown"


def test_a_festival_without_a_chinese_name_keeps_the_librarys_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A newer chinesecalendar may know a festival its Holiday enum does not name: shown as given."""
    import chinese_calendar

    monkeypatch.setattr(chinese_calendar, "get_holiday_detail", lambda day: (True, "New Festival"))
    assert chinesecalendar_name(date(2021, 10, 1)) == "New Festival"
