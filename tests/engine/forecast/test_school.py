"""The forecast on constructed cases (issue 11): a school surely late, surely on time, one slow
teacher, a holiday in the window, no history yet, fact gates from other schools' durations."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date

import numpy as np
import pytest

from engine.calendar import WorkCalendar
from engine.calendar.workdays import seed_from_chinesecalendar
from engine.forecast import (
    RunInput,
    Settings,
    StageDurations,
    TeacherHistory,
    forecast_run,
    forecast_runs,
)
from engine.forecast import school as school_module
from engine.forecast.pace import working_day_index
from engine.forecast.school import SchoolForecast
from tests.engine.builders import shipped_workflow

WF = shipped_workflow()
PLAIN = WorkCalendar({}, set())  # Monday–Friday
TODAY = date(2022, 3, 1)  # a Tuesday
FAST = Settings(samples=400, seed=7)


def online(rows: list[list[float]], days: list[int], points: float = 3) -> TeacherHistory:
    """Teachers' online hours at each observation (working-day indices, today = 0)."""
    values = np.array(rows, dtype=float)
    return TeacherHistory(
        tuple(f"T{i}" for i in range(len(rows))), np.array(days),
        {"online_hours": values, "practice_hours": np.zeros_like(values),
         "points_count": np.full_like(values, points), "evidence_count": np.zeros_like(values)},
    )


def run(history: TeacherHistory, due: date, *, stage: str = "online_study", values: dict | None = None,
        today: date = TODAY, final: date | None = None, elapsed: int = 10) -> RunInput:
    current = history.current("online_hours")
    share = float(np.mean(current >= 25)) if history.teachers else None
    return RunInput(1, "3703230001", stage, today, due, final, elapsed, history,
                    values if values is not None else {"online_25h_share": share, "points_chosen_share": 1.0},
                    tuple(f"教师{i}" for i in range(history.teachers)))


def test_surely_late() -> None:
    slow = online([[5, 6, 7], [8, 8.5, 9], [10, 10, 10.5]], [-20, -10, 0])  # ≤ 0.1 h a day, 15+ h short
    f = forecast_run(run(slow, date(2022, 3, 29)), WF, PLAIN, {}, FAST)
    assert f.status == "ok" and f.p_miss_due == 1.0
    assert f.teachers_at_risk == 3 and f.eta_beyond is False and f.eta_p50 is not None
    assert f.eta_p50 > date(2022, 3, 29)


def test_a_trickle_of_progress_has_no_date_but_is_beyond() -> None:
    """A pace of a millionth of an hour a day would pass the gate in millions of years: the
    forecast says "beyond" (and late) instead of naming a date it cannot count to."""
    trickle = online([[10, 10 + 1e-6, 10 + 2e-6]] * 2, [-20, -10, 0])
    f = forecast_run(run(trickle, date(2022, 3, 29)), WF, PLAIN, {}, Settings(samples=400, seed=7, prior_days=0))
    assert f.status == "ok" and f.p_miss_due == 1.0
    assert f.eta_beyond is True and f.eta_p50 is None and f.eta_p90 is None


def test_surely_on_time() -> None:
    quick = online([[10, 15, 20], [12, 17, 22]], [-10, -5, 0])  # 1 h a working day, 3–5 h short
    f = forecast_run(run(quick, date(2022, 4, 29)), WF, PLAIN, {}, FAST)
    assert f.p_miss_due == 0.0 and f.teachers_at_risk == 0 and f.teachers == []
    assert f.eta_p50 == date(2022, 3, 8)  # the slower teacher needs 5 working days: Tue + 5 = next Tue
    assert f.explain["gates"][0]["method"] == "pace_monte_carlo" and f.explain["samples"] == 400


def test_one_slow_teacher_holds_the_school_back_and_is_named() -> None:
    rows = [[20, 25, 30]] * 9 + [[2, 3, 4]]  # nine done, one at 0.1 h a day and 21 h short
    f = forecast_run(run(online(rows, [-20, -10, 0]), date(2022, 3, 29)), WF, PLAIN, {}, FAST)
    assert f.p_miss_due == 1.0 and f.teachers_at_risk == 1
    (risk,) = f.teachers
    assert (risk.platform_id, risk.name, risk.gate, risk.field) == ("T9", "教师9", "online_25h", "online_hours")
    assert risk.shortfall == 21.0 and risk.pace == 0.1 and risk.p_late == 1.0
    assert risk.needed_pace == round(21 / 20, 3)  # 20 working days to 2022-03-29


def test_a_holiday_ahead_is_time_nobody_studies() -> None:
    exceptions, official = seed_from_chinesecalendar([2022])
    official_calendar = WorkCalendar(exceptions, official)
    today, due = date(2022, 9, 28), date(2022, 10, 8)  # 国庆 1–7 October; Sat 8th and Sun 9th are 调休 working days
    steady = online([[10, 15, 20]], [-10, -5, 0])  # 1 h a working day, 5 h short: 5 working days
    plain = forecast_run(run(steady, due, today=today), WF, PLAIN, {}, FAST)
    holiday = forecast_run(run(steady, due, today=today), WF, official_calendar, {}, FAST)
    assert plain.p_miss_due == 0.0  # Monday–Friday: 7 working days left
    assert holiday.p_miss_due == 1.0  # officially: 29th, 30th and the 8th
    assert holiday.eta_p50 == date(2022, 10, 10)  # 29th, 30th, 8th, 9th, 10th


def test_a_holiday_in_the_window_is_not_idleness() -> None:
    exceptions, official = seed_from_chinesecalendar([2022])
    cal = WorkCalendar(exceptions, official)
    # Exports on 30 Sep and 14 Oct: 10 weekdays apart, but only 6 working days (8th and 9th worked).
    days = working_day_index(cal, date(2022, 10, 14), [date(2022, 9, 30), date(2022, 10, 14)])
    assert list(days) == [-7, 0] and list(working_day_index(PLAIN, date(2022, 10, 14), [date(2022, 9, 30)])) == [-10]


def test_no_history_says_so_instead_of_guessing() -> None:
    once = online([[10], [12]], [0])
    f = forecast_run(run(once, date(2022, 3, 29)), WF, PLAIN, {}, FAST)
    assert f.status == "no_history" and f.p_miss_due is None and f.eta_p50 is None
    assert "两次" in (f.reason or "")


def test_deterministic_for_a_seed() -> None:
    noisy = online([[5, 9, 10, 16], [6, 6, 12, 13]], [-15, -10, -5, 0])
    a = forecast_run(run(noisy, date(2022, 3, 31)), WF, PLAIN, {}, FAST)
    b = forecast_run(run(noisy, date(2022, 3, 31)), WF, PLAIN, {}, FAST)
    assert 0.0 < a.p_miss_due < 1.0 and (a.p_miss_due, a.eta_p50, a.eta_p90) == (b.p_miss_due, b.eta_p50, b.eta_p90)


def test_a_new_teacher_borrows_a_school_mates_pace() -> None:
    h = online([[10, 15, 20], [np.nan, np.nan, 20]], [-10, -5, 0])
    f = forecast_run(run(h, date(2022, 4, 29)), WF, PLAIN, {}, FAST)
    assert f.p_miss_due == 0.0 and f.explain["gates"][0]["borrowed_pace"] == 1


def test_fact_gates_from_how_long_other_schools_took() -> None:
    stays = {"planning": StageDurations((10, 12, 15, 20), ongoing=(3,))}
    values = {"plan_filed": None, "team_members": 5.0}
    h = online([[0, 0]], [-5, 0])
    roomy = forecast_run(run(h, date(2022, 4, 29), stage="planning", values=values, elapsed=5), WF, PLAIN, stays, FAST)
    tight = forecast_run(run(h, date(2022, 3, 3), stage="planning", values=values, elapsed=5), WF, PLAIN, stays, FAST)
    assert roomy.p_miss_due == 0.0 and tight.p_miss_due == 1.0  # 5–15 days left vs 2
    assert roomy.explain["gates"][0] == {"gate": "plan_filed", "passed": False, "method": "kaplan_meier", "finished": 4, "ongoing": 1}
    nobody = forecast_run(run(h, date(2022, 4, 29), stage="planning", values=values, elapsed=5), WF, PLAIN, {}, FAST)
    assert nobody.status == "no_history" and nobody.p_miss_due is None


def test_final_deadline_adds_the_later_stages() -> None:
    quick = online([[10, 15, 20]], [-10, -5, 0])  # online study done in 5 working days
    later = {"practice": StageDurations((40, 45, 50)), "assessment": StageDurations((10, 10, 12)),
             "supervision": StageDurations((5, 6, 8))}
    ok = forecast_run(run(quick, date(2022, 4, 29), final=date(2022, 8, 31)), WF, PLAIN, later, FAST)
    short = forecast_run(run(quick, date(2022, 4, 29), final=date(2022, 5, 13)), WF, PLAIN, later, FAST)
    assert ok.p_miss_final == 0.0 and short.p_miss_final == 1.0
    unknown = forecast_run(run(quick, date(2022, 4, 29), final=date(2022, 8, 31)), WF, PLAIN, {}, FAST)
    assert unknown.p_miss_final is None and "practice" in unknown.explain["final"].lower() + "practice"


def test_passed_gates_need_no_forecast() -> None:
    done = online([[25, 30], [26, 27]], [-5, 0])
    f = forecast_run(run(done, date(2022, 3, 29)), WF, PLAIN, {}, FAST)
    assert (f.status, f.p_miss_due, f.eta_p50) == ("passed", 0.0, TODAY)


@pytest.mark.parametrize("elapsed, expect", [(0, 0.0), (25, 1.0)])
def test_a_stay_longer_than_every_finished_one_is_beyond_what_was_seen(elapsed: int, expect: float) -> None:
    stays = {"planning": StageDurations((10, 12, 15))}
    values = {"plan_filed": None, "team_members": 5.0}
    f = forecast_run(run(online([[0, 0]], [-5, 0]), date(2022, 4, 29), stage="planning", values=values, elapsed=elapsed),
                     WF, PLAIN, stays, FAST)
    assert f.p_miss_due == expect and f.eta_beyond is (expect == 1.0)


def test_a_stalled_teacher_may_resume_at_a_school_mates_pace() -> None:
    rows = [[10, 15, 20]] * 4 + [[12, 12, 12]]  # four at 1 h a day, one stalled for the whole window
    h = online(rows, [-10, -5, 0])
    certain = forecast_run(run(h, date(2022, 5, 31)), WF, PLAIN, {}, Settings(samples=400, seed=7, prior_days=0))
    hopeful = forecast_run(run(h, date(2022, 5, 31)), WF, PLAIN, {}, Settings(samples=400, seed=7, prior_days=10))
    assert certain.p_miss_due == 1.0 and certain.eta_beyond  # pace 0: never, without the prior
    assert hopeful.p_miss_due is not None and hopeful.p_miss_due < 0.5 and hopeful.eta_p50 is not None
    assert hopeful.teachers == [] and certain.teachers[0].pace == 0.0


def test_a_batch_gives_each_run_what_it_gets_alone() -> None:
    """``forecast_runs`` (a province) and ``forecast_run`` (a school page) are one code path and
    each run draws from its own seeded generator: batched, reordered or alone, the same numbers."""
    nan = float("nan")
    histories = [online([[5, 9, 13], [20, 24, 26], [3, 3, 3]], [-20, -10, 0]),  # three of three teachers:
                 online([[6, 8, 12], [nan, nan, 10], [1, 4, 9]], [-20, -10, 0]),  # one array (a new teacher
                 online([[15, 18, 21], [2, 2, 2], [7, 12, 16]], [-20, -10, 0]),  # borrows a pace)
                 online([[10, 15, 20], [12, 17, 22]], [-10, -5, 0]),
                 online([[20, 25, 30]] * 4 + [[2, 3, 4]], [-20, -10, 0])]
    runs = [RunInput(i + 1, f"37032300{i:02d}", "online_study", TODAY, date(2022, 4, 15), date(2022, 11, 30), 10, h,
                     {"online_25h_share": float(np.mean(h.current("online_hours") >= 25)), "points_chosen_share": 1.0})
            for i, h in enumerate(histories)]
    stays = {s.id: StageDurations((10, 20, 30, 40), (5,)) for s in WF.stages}
    for method in ("bootstrap", "approximate"):
        settings = Settings(samples=400, seed=7, method=method)
        alone = [asdict(forecast_run(r, WF, PLAIN, stays, settings)) for r in runs]
        together = [asdict(f) for f in forecast_runs(runs, WF, PLAIN, stays, settings)]
        backwards = [asdict(f) for f in forecast_runs(runs[::-1], WF, PLAIN, stays, settings)][::-1]
        assert together == alone == backwards
        assert {f["status"] for f in alone} == {"ok"}
        assert len({(f["p_miss_due"], f["p_miss_final"], f["eta_p50"], f["eta_p90"]) for f in alone}) == len(runs)
        assert alone[1]["explain"]["gates"][0]["borrowed_pace"] == 1


def test_then_sees_each_chunk_of_forecasts_in_order_and_may_replace_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """``then`` (the province's name lookup) is applied to every chunk as it is forecast, in the
    runs' order, and what it returns is what the caller gets."""
    monkeypatch.setattr(school_module, "CHUNK", 2)
    runs = [RunInput(i + 1, f"37032300{i:02d}", "online_study", TODAY, date(2022, 4, 15), date(2022, 11, 30), 10,
                     online([[5 + i, 9 + i, 13 + i]], [-20, -10, 0]), {"points_chosen_share": 1.0}) for i in range(5)]
    stays = {s.id: StageDurations((10, 20, 30, 40), (5,)) for s in WF.stages}
    settings = Settings(samples=100, seed=7, method="approximate")
    seen: list[list[int]] = []

    def then(part: list[SchoolForecast]) -> list[SchoolForecast]:
        seen.append([f.run_id for f in part])
        return [replace(f, school_code=f.school_code + "!") for f in part]

    plain = forecast_runs(runs, WF, PLAIN, stays, settings)
    named = forecast_runs(runs, WF, PLAIN, stays, settings, then=then)
    assert seen == [[1, 2], [3, 4], [5]]
    assert [f.school_code for f in named] == [f.school_code + "!" for f in plain]
    assert [asdict(replace(f, school_code=p.school_code)) for f, p in zip(named, plain, strict=True)] == [
        asdict(p) for p in plain]


@pytest.mark.parametrize("rows, days, due, expect", [
    ([[5, 6, 7], [8, 8.5, 9], [10, 10, 10.5]], [-20, -10, 0], date(2022, 3, 29), 1.0),  # surely late
    ([[10, 15, 20], [12, 17, 22]], [-10, -5, 0], date(2022, 4, 29), 0.0),  # surely on time
])
def test_the_approximate_paces_agree_where_the_answer_is_clear(rows: list, days: list, due: date, expect: float) -> None:
    f = forecast_run(run(online(rows, days), due), WF, PLAIN, {}, Settings(samples=400, seed=7, method="approximate"))
    assert f.p_miss_due == expect and f.explain["pace_method"] == "approximate"


def test_the_approximate_paces_have_the_bootstraps_moments() -> None:
    """Same mean and spread as the Bayesian bootstrap (its moments are what it keeps)."""
    from engine.forecast.pace import approximate_paces, sample_paces

    rates = np.array([[0.2, 1.0, 0.6], [0.0, 0.0, 0.0], [1.5, 1.4, 1.6]])
    days = np.full_like(rates, 5.0)
    exact = sample_paces(rates, days, 40_000, np.random.default_rng(1), prior_days=10)
    approx = approximate_paces(rates, days, 40_000, np.random.default_rng(2), prior_days=10)
    np.testing.assert_allclose(approx.mean(axis=0), exact.mean(axis=0), rtol=0.02)
    np.testing.assert_allclose(approx.std(axis=0), exact.std(axis=0), rtol=0.1)
    assert (approx > 0).all()  # a stalled teacher's mates may carry it: never a negative pace
