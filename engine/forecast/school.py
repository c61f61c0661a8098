"""One school run's forecast, as a pure function of plain data: will it miss its current stage's
due date, will it miss the plan's final deadline, when will its current gates pass (P50/P90), and
which teachers are why.

The current stage's teacher gates come from the teachers' pace (``engine.forecast.pace``), its
fact gates and every later stage from how long other schools of the plan took
(``engine.forecast.durations``). Everything is counted in working days on the official calendar
(调休 included), so a holiday between now and the due date is time nobody studies. A school with
fewer than two observations, or a stage nobody has finished yet, gets ``status = "no_history"``
and a reason, never a number. The same inputs and seed always give the same numbers (each run
draws from its own seeded generator, so a school's forecast does not depend on which other
schools were forecast with it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import numpy as np

from engine.calendar import WorkCalendar
from engine.calendar.memo import remembered
from engine.forecast.batch import group_crossing, group_eta
from engine.forecast.cores import forked, frozen_heap, inherited, mapped
from engine.forecast.durations import StageDurations, remaining_days
from engine.forecast.final import final_misses
from engine.forecast.pace import TeacherHistory, TeacherSums, needed_teachers
from engine.forecast.short import short_crossing, short_eta, short_lates
from engine.gate import judge
from engine.i18n import tr
from engine.workflow.model import Stage, Workflow

SAMPLES = 500  # the backtest's setting (docs/forecast.md); --samples for more
WINDOW = 20  # working days of recent pace (four weeks)
PRIOR_DAYS = 10.0  # pseudo-days at a school-mate's pace mixed into each teacher's (pace.sample_paces)
AT_RISK = 0.5  # a teacher is "at risk" when more likely late than not
SHOWN_TEACHERS = 10
# Working days (about ten years) past which an ETA is "beyond": a trickle of progress (1e-6 hours a
# day) would put its date past the year 9999, and the calendar walks there day by day.
ETA_HORIZON = 2_500


@dataclass(frozen=True)
class Settings:
    samples: int = SAMPLES
    seed: int = 0
    window: int = WINDOW
    prior_days: float = PRIOR_DAYS
    method: str = "bootstrap"  # or "approximate": the bootstrap's moments, one draw a sample (pace.approximate_paces)
    workers: int = 0  # processes for a province (0: one per core; engine.forecast.cores), never part of a result


DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True)
class RunInput:
    """What the forecast of one run reads. ``history.days`` are working-day indices (today = 0)."""

    run_id: int
    school_code: str
    stage: str
    today: date
    due: date | None
    final: date | None
    elapsed: int  # working days since the run entered its stage
    history: TeacherHistory | TeacherSums  # sums: a province read (approximate method only)
    values: Mapping[str, float | None]  # today's metric values (facts included), as gates see them
    names: tuple[str, ...] = ()  # teachers' names, parallel to history.teacher_ids


@dataclass(frozen=True)
class TeacherRisk:
    platform_id: str
    name: str
    gate: str
    field: str
    shortfall: float
    pace: float | None  # the teacher's own mean pace per working day in the window (None: unknown)
    needed_pace: float | None  # per working day until the due date (None: no working day left)
    p_late: float


@dataclass
class SchoolForecast:
    run_id: int
    school_code: str
    stage: str
    status: str  # ok | passed | no_history
    due_date: date | None
    final_deadline: date | None
    p_miss_due: float | None = None
    p_miss_final: float | None = None
    eta_p50: date | None = None
    eta_p90: date | None = None
    eta_beyond: bool = False  # P90 (or P50) never comes at the observed pace
    teachers_at_risk: int = 0
    teachers: list[TeacherRisk] = field(default_factory=list)
    reason: str | None = None
    explain: dict[str, Any] = field(default_factory=dict)


def windowed(history: TeacherHistory | TeacherSums, window: int) -> TeacherHistory | TeacherSums:
    """The observations of the last ``window`` working days, plus the one just before them (so
    the first interval of the window is known). Sums were read over that window already."""
    if isinstance(history, TeacherSums):
        return history
    inside = np.flatnonzero(history.days >= -window)
    if inside.size == 0:
        keep = np.arange(max(0, history.days.size - 1), history.days.size)
    else:
        keep = np.arange(max(0, int(inside[0]) - 1), history.days.size)
    return TeacherHistory(history.teacher_ids, history.days[keep], {f: v[:, keep] for f, v in history.values.items()})


def next_stages(wf: Workflow, stage: str) -> list[Stage]:
    """The stages after ``stage`` on the way forward (advance transitions), terminal excluded."""
    out: list[Stage] = []
    seen = {stage}
    current = stage
    while True:
        step = next((t for t in wf.transitions_from(current) if t.kind == "advance"), None)
        if step is None or step.dest is None or not wf.has_stage(step.dest) or step.dest in seen:
            return out
        nxt = wf.stage(step.dest)
        if nxt.terminal:
            return out
        out.append(nxt)
        seen.add(nxt.id)
        current = nxt.id


BATCH = 256  # schools per group array: samples × teachers × 256 floats (~20 MB at 500 × 20)
CHUNK = 4_096  # runs forecast together: their ETA samples (500 floats each) at once, not a province's


@dataclass
class _Open:
    """A run being forecast: its result so far, its generator, its window, its ETA samples."""

    run: RunInput
    result: SchoolForecast
    rng: np.random.Generator
    history: TeacherHistory | TeacherSums
    horizon: int | None
    eta: np.ndarray
    crossings: list[Any] = field(default_factory=list)
    done: bool = False
    risky: bool = False  # some teacher short of a gate is more likely late than not (_teachers' work)


def forecast_runs(
    runs: Sequence[RunInput], wf: Workflow, calendar: WorkCalendar, durations: Mapping[str, StageDurations],
    settings: Settings = DEFAULT_SETTINGS, workers: int = 1,
    then: Callable[[list[SchoolForecast]], list[SchoolForecast]] | None = None,
) -> list[SchoolForecast]:
    """The forecasts of many open runs (a province's), gate by gate: the teacher gates of schools
    with the same stage, teacher count and observation days as one array (``engine.forecast.batch``);
    what they share computed once (the Kaplan–Meier fits, the calendar's answers). Each run draws
    from its own generator in the same order as alone, so every run's numbers are those
    ``forecast_run`` gives it alone — and so chunks of runs may be forecast in ``workers`` forked
    processes (``engine.forecast.cores``) with the same result. ``then`` is applied here to each
    chunk's forecasts as they arrive, while the workers forecast the next ones (the caller's reads
    for the forecasts, e.g. the names of the teachers they show)."""
    days = remembered(calendar)
    then = then or list
    if workers > 1 and len(runs) > CHUNK:
        # Chunks of a quarter: with thirteen, one worker forecast the last alone for a tenth of the time.
        starts = list(range(0, len(runs), max(1, CHUNK // 4)))
        with forked(min(workers, len(starts)), (runs, wf, days, durations, settings)) as pool:
            return [f for part in mapped(pool, _inherited_chunk, starts) for f in then(part)]
    with frozen_heap():  # each run's samples live only while its chunk is forecast
        return [f for start in range(0, len(runs), CHUNK)
                for f in then(_forecast_chunk(runs[start:start + CHUNK], wf, days, durations, settings))]


def _inherited_chunk(start: int) -> list[SchoolForecast]:
    """In a forked worker: the quarter chunk of the parent's runs from ``start``."""
    runs, wf, days, durations, settings = inherited()
    return _forecast_chunk(runs[start:start + max(1, CHUNK // 4)], wf, days, durations, settings)


def _forecast_chunk(runs: Sequence[RunInput], wf: Workflow, days: WorkCalendar,
                    durations: Mapping[str, StageDurations], settings: Settings) -> list[SchoolForecast]:
    states = [_open(run, wf, days, settings) for run in runs]
    if not states:
        return []
    depth = max((len(wf.stage(st.run.stage).gates) for st in states), default=0)
    verdicts: dict[tuple[str, str, float | None], bool] = {}  # (stage, gate, value) → passed: few values a province
    for position in range(depth):
        groups: dict[tuple[Any, ...], list[_Open]] = defaultdict(list)
        for st in states:
            gates = wf.stage(st.run.stage).gates
            if st.done or position >= len(gates):
                continue
            if _fact_or_passed(st, gates[position], wf, durations, settings, verdicts):
                continue
            if st.history.days.size < 2:
                _no_pace(st)
                continue
            days_seen = st.history.days
            groups[(st.run.stage, st.history.teachers, days_seen.dtype.str, days_seen.tobytes())].append(st)
        for group in groups.values():
            for start in range(0, len(group), BATCH):
                _teacher_gate(group[start:start + BATCH], position, wf, settings)
    # What every run of a chunk shares, once: the ETA quantiles (one np.quantile over the chunk,
    # the same numbers as one per run) and each stage's later stages.
    etas = np.stack([st.eta for st in states])
    quantiles = np.quantile(etas, [0.5, 0.9], axis=1, method="inverted_cdf")
    late = np.count_nonzero(etas > np.array([-1 if st.horizon is None else st.horizon for st in states])[:, None],
                            axis=1).tolist()  # samples past the due date (unused without one)
    later = {stage: next_stages(wf, stage) for stage in {st.run.stage for st in states}}
    finishing = [st for st in states if not st.done and st.run.final is not None]
    finals = dict(zip((id(st) for st in finishing), final_misses(
        [(st.run.today, st.run.final, st.run.stage, st.eta, st.rng) for st in finishing if st.run.final],
        later, days, durations, settings.samples), strict=True))
    return [_close(st, days, (float(q50), float(q90)), finals.get(id(st)), n / settings.samples)
            for st, q50, q90, n in zip(states, quantiles[0], quantiles[1], late, strict=True)]


def forecast_run(
    run: RunInput, wf: Workflow, calendar: WorkCalendar, durations: Mapping[str, StageDurations],
    settings: Settings = DEFAULT_SETTINGS,
) -> SchoolForecast:
    """The forecast of one open run (see the module docstring): ``forecast_runs`` of one."""
    return forecast_runs([run], wf, calendar, durations, settings)[0]


def _open(run: RunInput, wf: Workflow, calendar: WorkCalendar, settings: Settings) -> _Open:
    result = SchoolForecast(run.run_id, run.school_code, run.stage, "ok", run.due, run.final)
    history = windowed(run.history, settings.window)
    result.explain = {
        "today": run.today, "window_working_days": settings.window, "samples": settings.samples,
        "seed": settings.seed, "prior_days": settings.prior_days, "pace_method": settings.method,
        "teachers": history.teachers, "observations": history.days.tolist(), "gates": [],
    }
    horizon = calendar.working_days_between(run.today, run.due) if run.due else None
    return _Open(run, result, np.random.default_rng([settings.seed, run.run_id]), history, horizon,
                 np.zeros(settings.samples))


def _fact_or_passed(st: _Open, gate: Any, wf: Workflow, durations: Mapping[str, StageDurations],
                    settings: Settings, verdicts: dict[tuple[str, str, float | None], bool]) -> bool:
    """Judge the gate (``verdicts``: the chunk's judgements so far); a passed gate or a fact gate
    (Kaplan–Meier) is dealt with here (True)."""
    metric = wf.metrics[gate.metric]
    stage = wf.stage(st.run.stage)
    value = st.run.values.get(gate.metric)
    key = (stage.id, gate.id, value)
    passed = verdicts.get(key)
    if passed is None:
        passed = verdicts[key] = judge(gate, metric, value).passed
    info: dict[str, Any] = {"gate": gate.id, "passed": passed}
    st.result.explain["gates"].append(info)
    if passed:
        return True
    if metric.kind != "fact" and metric.where:
        return False
    stay = durations.get(stage.id, StageDurations(()))
    info |= {"method": "kaplan_meier", "finished": len(stay.finished), "ongoing": len(stay.ongoing)}
    if not stay.enough:
        _no_history(st.result, tr(
            f"阶段“{stage.title.zh}”完成的学校不足 {3} 所，无法估计“{gate.title.zh}”何时达成",
            f"fewer than 3 schools have finished stage '{stage.title.en}': no basis for when '{gate.title.en}' is met"))
        st.done = True
        return True
    st.eta = np.maximum(st.eta, remaining_days(stay, st.run.elapsed, settings.samples, st.rng))
    return True


def _no_pace(st: _Open) -> None:
    _no_history(st.result, tr("该校只有不到两次进度导入，尚无学习进度的历史，无法预测",
                              "fewer than two progress imports of this school: no pace yet, no forecast"))
    st.done = True


def _teacher_gate(group: list[_Open], position: int, wf: Workflow, settings: Settings) -> None:
    """One teacher gate for schools of one stage, teacher count and observation days."""
    gate = wf.stage(group[0].run.stage).gates[position]
    metric = wf.metrics[gate.metric]
    histories, rngs = [st.history for st in group], [st.rng for st in group]
    teachers = group[0].history.teachers
    need = needed_teachers(metric.kind, gate.op, gate.value, teachers)
    horizons = [-1 if st.horizon is None else st.horizon for st in group]
    if settings.method == "approximate":  # only the teachers still short drawn (engine.forecast.short)
        found = short_crossing(metric, histories, settings.samples, rngs, settings.prior_days)
        etas = short_eta(found, need, teachers, settings.samples)
        lates = short_lates(found, horizons, teachers, settings.samples)
    else:
        found = group_crossing(metric, histories, settings.samples, rngs, settings.prior_days, settings.method)
        stacked = np.stack([c.days for c in found])
        etas = group_eta(stacked, need)
        lates = np.count_nonzero(stacked > np.array(horizons)[:, None, None], axis=1) / settings.samples  # P(late)
    known = np.array([st.horizon is not None for st in group])
    by_due = np.count_nonzero(etas <= np.array(horizons)[:, None], axis=1).tolist()  # (None where no due date)
    risky = cast("list[bool]", np.logical_and(np.stack([c.shortfall for c in found]) > 0, lates >= AT_RISK).any(axis=1).tolist())
    later = np.maximum(np.stack([st.eta for st in group]), etas)
    for st, crossing, late, passing, has_due, worry, eta in zip(group, found, lates, by_due, known.tolist(), risky,
                                                                later, strict=True):
        if not crossing.paced:
            _no_pace(st)
            continue
        if not crossing.modelled:
            _no_history(st.result, tr(f"“{gate.title.zh}”的条件无法按进度推算", f"'{gate.title.en}' cannot be projected from pace"))
            st.done = True
            continue
        st.result.explain["gates"][-1] |= {
            "method": "pace_monte_carlo", "needed_teachers": need, "borrowed_pace": crossing.borrowed,
            "p_pass_by_due": passing / settings.samples if has_due else None}
        st.crossings.append((gate, crossing.shortfall, crossing.field, crossing.pace, late))  # not its samples
        st.risky |= worry
        st.eta = eta


def _close(st: _Open, calendar: WorkCalendar, quantiles: tuple[float, float],
           final: float | str | None, late: float) -> SchoolForecast:
    """The run's result from its samples: ``final`` is its P(miss the final deadline) or the
    reason there is none (``engine.forecast.final``; None: no final deadline), ``late`` the share
    of its samples past the due date (counted for the chunk at once)."""
    result, run = st.result, st.run
    if st.done:
        return result
    gates = result.explain["gates"]
    if not gates or all(g["passed"] for g in gates):
        result.status = "passed"
        result.p_miss_due = 0.0 if run.due else None
    if st.horizon is not None and result.status == "ok":
        result.p_miss_due = late  # a float: numpy's pickle slowly
    _etas(result, quantiles, run.today, calendar)
    if isinstance(final, str):
        result.explain["final"] = final
    elif final is not None:
        result.p_miss_final = final
    if st.horizon is not None:
        _teachers(result, run, st.crossings, st.horizon, st.risky)
    return result


def _no_history(result: SchoolForecast, reason: str) -> SchoolForecast:
    result.status, result.reason = "no_history", reason
    return result


def _etas(result: SchoolForecast, quantiles: tuple[float, float], today: date, calendar: WorkCalendar) -> None:
    """P50 and P90 of the ETA samples (``method="inverted_cdf"``: no interpolation with inf)."""
    for name, q in zip(("eta_p50", "eta_p90"), quantiles, strict=True):
        if q > ETA_HORIZON:  # inf, or a pace near zero: a date decades away is no date to act on
            result.eta_beyond = True
            continue
        setattr(result, name, calendar.add_working_days(today, int(math.ceil(q))).due)


def _teachers(result: SchoolForecast, run: RunInput, crossings: list[Any], horizon: int, st_risky: bool = True) -> None:
    """The teachers most likely late (each at the gate that makes it likeliest; the first on a tie)."""
    if not st_risky:  # no teacher short of a gate at P(late) ≥ AT_RISK: none at risk, nothing to sort
        return
    best = np.full(run.history.teachers, -1.0)
    which = np.full(run.history.teachers, -1)
    for k, (_, shortfall, _, _, late) in enumerate(crossings):
        p = np.where(shortfall > 0, late, -1.0)
        better = p > best
        best, which = np.where(better, p, best), np.where(better, k, which)
    risky = np.flatnonzero(best >= AT_RISK)
    result.teachers_at_risk = int(risky.size)
    ids = run.history.teacher_ids
    order = sorted(risky.tolist(), key=lambda t: (-best[t], -round(float(crossings[which[t]][1][t]), 2), ids[t]))
    shown = []
    for t in order[:SHOWN_TEACHERS]:
        gate, shortfall, fields, paces, _ = crossings[which[t]]
        pace = float(paces[t])
        shown.append(TeacherRisk(
            platform_id=str(ids[t]), name=run.names[t] if run.names else "", gate=gate.id, field=fields[t],
            shortfall=round(float(shortfall[t]), 2), pace=None if math.isnan(pace) else round(pace, 3),
            needed_pace=round(float(shortfall[t]) / horizon, 3) if horizon > 0 else None, p_late=float(best[t])))
    result.teachers = shown
