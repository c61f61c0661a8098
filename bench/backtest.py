"""Backtest of the early-warning forecast (issue 11): replay a term, forecast at cut-offs before the
deadline, compare with what then happened, against two baselines measured in the same run.

``python -m bench.backtest [--schools 600] [--seed 1] [--samples 500]`` prints the markdown table
docs/forecast.md shows.

The data is NOT made by the forecast's model (a teacher's pace resampled from its own recent
daily gains). Each teacher studies on working days of the official 2022 calendar with a daily
chance of a session of random length (a gamma draw), so gains are lumpy; on top of that:

- **rushes**: procrastinators (a third) study two to four times as much in the last 15 working days;
- **holiday pauses**: no study on holidays (清明, 劳动节, 端午 fall in the term), and a slow week after;
- **stalls**: a fifth of teachers stop for 10–30 working days at a random time, then resume;
- **dropouts**: 1 % stop for good at a random time (the school then misses: every teacher counts);
- **schools that speed up** (15 %: twice the pace from a random day, e.g. after a county push) or
  **give up** (10 %: a fifth of the pace from a random day).

Exports are weekly (every Monday). A school *missed* when some teacher had < 25 online hours on the
deadline. Cut-offs: 60, 40 and 20 working days before it. Baselines: the **base rate** (the share
of schools that missed in a previous term made by the same generator with another seed, so the test
term is not peeked at) and **straight-line**: every teacher goes on at the school's mean pace so
far (predicts 1 if any teacher would still be short, else 0).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from engine.calendar import WorkCalendar
from engine.calendar.workdays import seed_from_chinesecalendar
from engine.forecast import RunInput, Settings, TeacherHistory, forecast_run
from engine.forecast.pace import working_day_index
from engine.workflow import WORKFLOWS_DIR, load_workflow_file

START = date(2022, 3, 1)
TERM = 120  # working days from start to the deadline
NEED = 25.0
CUTOFFS = (60, 40, 20)
PACE = 0.55  # a school's median hours per working day: its median teacher needs ~45 of the 120 days
DROPOUT = 0.01
BINS = np.linspace(0, 1, 11)


@dataclass
class Term:
    """Each school's teachers' cumulative hours at the end of each day, the days, the outcome."""

    days: list[date]
    hours: list[np.ndarray]  # per school: teachers × days
    missed: np.ndarray
    due: date


def calendar() -> WorkCalendar:
    exceptions, official = seed_from_chinesecalendar([2022])
    return WorkCalendar(exceptions, official)


def generate(schools: int, seed: int, cal: WorkCalendar) -> Term:
    """One term of lumpy, rushed, paused, stalled study (see the module docstring)."""
    rng = np.random.default_rng(seed)
    due = cal.add_working_days(START, TERM).due
    days = [START + timedelta(d) for d in range((due - START).days + 1)]
    work = np.array([cal.is_workday(d) for d in days])
    index = np.cumsum(work) * work  # working-day number, 0 on days off
    after_holiday = np.zeros(len(days), dtype=bool)
    for i in range(1, len(days)):
        if not work[i - 1] and days[i - 1].weekday() < 5:  # a weekday off: a holiday
            after_holiday[i:i + 7] = True
    hours = []
    missed = np.zeros(schools, dtype=bool)
    for s in range(schools):
        n = int(rng.integers(10, 41))
        school_pace = rng.lognormal(np.log(PACE), 0.35)
        change = rng.random()
        change_day = int(rng.integers(20, TERM - 20))
        factor = np.ones(TERM + 2)
        if change < 0.15:
            factor[change_day:] = 2.0
        elif change < 0.25:
            factor[change_day:] = 0.2
        pace = school_pace * rng.lognormal(0.0, 0.4, n)
        p_session = rng.uniform(0.25, 0.7, n)
        rush = np.where(rng.random(n) < 1 / 3, rng.uniform(2, 4, n), 1.0)
        stall_start = np.where(rng.random(n) < 0.2, rng.integers(0, TERM, n), TERM + 10)
        stall_len = rng.integers(10, 31, n)
        drop = np.where(rng.random(n) < DROPOUT, rng.integers(10, TERM, n), TERM + 10)
        start_hours = rng.uniform(0, 4, n)
        gains = np.zeros((n, len(days)))
        for i, _ in enumerate(days):
            if not work[i]:
                continue
            w = int(index[i])
            active = (w < drop) & ~((w >= stall_start) & (w < stall_start + stall_len))
            mult = factor[w] * np.where(TERM - w < 15, rush, 1.0) * (0.5 if after_holiday[i] else 1.0)
            studied = rng.random(n) < p_session
            amount = rng.gamma(2.0, pace / p_session / 2.0)
            gains[:, i] = np.where(active & studied, amount * mult, 0.0)
        cumulative = start_hours[:, None] + np.cumsum(gains, axis=1)
        hours.append(cumulative)
        missed[s] = bool((cumulative[:, -1] < NEED).any())
    return Term(days, hours, missed, due)


def forecasts(term: Term, cal: WorkCalendar, cutoff: int, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """(forecast p, straight-line p) per school, ``cutoff`` working days before the deadline."""
    wf = load_workflow_file(WORKFLOWS_DIR / "whole-school-2.0.yaml")
    today = cal.add_working_days(term.due, -cutoff).due
    exports = [d for d in term.days if d.weekday() == 0 and START < d <= today]
    cols = [term.days.index(d) - 1 for d in exports]  # a Monday export holds hours to Sunday night
    rel = working_day_index(cal, today, exports)
    left = cal.working_days_between(today, term.due)
    ours, line = [], []
    for s, h in enumerate(term.hours):
        seen = h[:, cols]
        history = TeacherHistory(tuple(f"T{i}" for i in range(len(h))), rel,
                                 {"online_hours": seen, "practice_hours": np.zeros_like(seen),
                                  "points_count": np.full_like(seen, 3.0), "evidence_count": np.zeros_like(seen)})
        values = {"online_25h_share": float(np.mean(seen[:, -1] >= NEED)), "points_chosen_share": 1.0}
        run = RunInput(s + 1, f"S{s}", "online_study", today, term.due, None, TERM - cutoff, history, values)
        f = forecast_run(run, wf, cal, {}, settings)
        ours.append(f.p_miss_due if f.p_miss_due is not None else np.nan)
        pace = (seen[:, -1] - seen[:, 0]).mean() / max(1, int(rel[-1] - rel[0]))
        line.append(float((seen[:, -1] + pace * left < NEED).any()))
    return np.array(ours), np.array(line)


def scores(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    warn = p >= threshold
    tp = float((warn & y).sum())
    return {"recall": tp / max(1, y.sum()), "precision": tp / max(1, warn.sum()), "brier": float(np.mean((p - y) ** 2)),
            "warned": float(warn.sum())}


def calibration(p: np.ndarray, y: np.ndarray) -> list[tuple[str, int, float, float]]:
    rows = []
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if inside.any():
            rows.append((f"{lo:.1f}–{hi:.1f}", int(inside.sum()), float(p[inside].mean()), float(y[inside].mean())))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--window", type=int, default=Settings().window)
    parser.add_argument("--prior-days", type=float, default=Settings().prior_days)
    parser.add_argument("--method", choices=("bootstrap", "approximate"), default=Settings().method,
                        help="how teachers' paces are drawn (engine.forecast.Settings.method)")
    args = parser.parse_args(argv)
    cal = calendar()
    began = time.perf_counter()
    previous = generate(args.schools, args.seed + 1000, cal)
    term = generate(args.schools, args.seed, cal)
    base = float(previous.missed.mean())
    y = term.missed
    print(f"Backtest: {args.schools} schools, seed {args.seed}, {args.samples} samples, window {args.window} "
          f"working days, prior {args.prior_days:g} days, pace method {args.method}; deadline {term.due}; "
          f"{int(y.sum())} missed ({y.mean():.0%}); base rate from the previous term {base:.0%}.\n")
    print("| cut-off (working days before) | method | recall | precision | warned | Brier |")
    print("|---|---|---:|---:|---:|---:|")
    tables = {}
    for cutoff in CUTOFFS:
        ours, line = forecasts(term, cal, cutoff, Settings(samples=args.samples, seed=args.seed, window=args.window,
                                                              prior_days=args.prior_days, method=args.method))
        known = ~np.isnan(ours)
        for name, p in (("forecast", ours[known]), ("straight line", line[known]), ("base rate", np.full(known.sum(), base))):
            r = scores(p, y[known])
            print(f"| {cutoff} | {name} | {r['recall']:.2f} | {r['precision']:.2f} | {int(r['warned'])} | {r['brier']:.3f} |")
        tables[cutoff] = calibration(ours[known], y[known])
    for cutoff, rows in tables.items():
        print(f"\nCalibration of the forecast, {cutoff} working days before:\n")
        print("| forecast P(miss) | schools | mean forecast | share that missed |")
        print("|---|---:|---:|---:|")
        for label, count, mean, rate in rows:
            print(f"| {label} | {count} | {mean:.2f} | {rate:.2f} |")
    print(f"\n({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
