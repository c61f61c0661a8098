"""How long the pure forecast takes for a province's schools (issue 11 speed), and its peak memory.

``python -m bench.forecast_speed [--schools 50000] [--teachers 20] [--imports 12] [--samples 500]
[--method bootstrap|approximate] [--sums] [--past SHARE]`` runs ``engine.forecast.forecast_runs`` over synthetic schools
(teachers × weekly imports of history, the online-study gate, later stages from Kaplan–Meier fits)
in batches of ``--batch`` schools, as ``engine.forecast.forecast_plan`` does once it has read them.
With ``--sums`` (approximate only) each school's history is handed over as ``TeacherSums`` — its
window's sums, as ``engine.forecast.sums`` reads a province — instead of its observations: the
path a province forecast runs (building them is not timed). ``--past 0.94`` puts that share of
teachers past the 25 online hours already, as in the benchmark province (``bench.forecast_db``:
94 %), where most of a school's teachers draw nothing; without it ~90 % are still short. It times the model only; reading the inputs (``engine.forecast.data``) is extra. With fewer
schools than a province it extrapolates linearly to 50,000.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

import numpy as np

from engine.calendar import WorkCalendar
from engine.forecast import RunInput, Settings, StageDurations, TeacherHistory, forecast_runs
from engine.forecast.pace import TeacherSums
from engine.forecast.school import windowed
from engine.workflow import WORKFLOWS_DIR, load_workflow_file

PROVINCE = 50_000


FIELDS = ("online_hours", "practice_hours", "points_count", "evidence_count")


def summed(history: TeacherHistory, window: int) -> TeacherSums:
    """The ``TeacherSums`` of ``history``'s window: what ``engine.forecast.sums`` reads for it."""
    kept = windowed(history, window)
    assert isinstance(kept, TeacherHistory)
    return TeacherSums(np.arange(kept.teachers, dtype=np.int64), kept.days,
                       {f: kept.current(f) for f in FIELDS}, {f: kept.sums(f) for f in FIELDS})


def schools(first: int, count: int, teachers: int, imports: int, rng: np.random.Generator,
            sums: bool = False, past: float = 0.0) -> list[RunInput]:
    days = np.arange(-(imports - 1) * 5, 1, 5)
    zeros = np.zeros((teachers, imports))
    three = np.full((teachers, imports), 3.0)
    runs = []
    for s in range(first, first + count):
        online = np.cumsum(rng.gamma(1.0, 1.5, (teachers, imports)), axis=1)
        if past > 0:  # those teachers 25 hours further on all along: the same pace, past the condition
            online = online + 25.0 * (rng.random(teachers) < past)[:, None]
        h = TeacherHistory(tuple(f"T{i}" for i in range(teachers)), days,
                           {"online_hours": online, "practice_hours": zeros, "points_count": three, "evidence_count": zeros})
        values = {"online_25h_share": float(np.mean(online[:, -1] >= 25)), "points_chosen_share": 1.0}
        runs.append(RunInput(s + 1, f"S{s}", "online_study", date(2022, 3, 1), date(2022, 5, 31), date(2022, 11, 30),
                             30, summed(h, Settings().window) if sums else h, values))
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--teachers", type=int, default=20)
    parser.add_argument("--imports", type=int, default=12)
    parser.add_argument("--samples", type=int, default=Settings().samples)
    parser.add_argument("--method", choices=("bootstrap", "approximate"), default=Settings().method)
    parser.add_argument("--sums", action="store_true", help="histories as TeacherSums (the province path)")
    parser.add_argument("--past", type=float, default=0.0, help="share of teachers past 25 online hours already")
    parser.add_argument("--batch", type=int, default=5_000, help="schools generated and forecast at a time")
    args = parser.parse_args(argv)
    if args.sums and args.method != "approximate":
        parser.error("--sums needs --method approximate (the bootstrap resamples observations)")
    rng = np.random.default_rng(0)
    wf = load_workflow_file(WORKFLOWS_DIR / "whole-school-2.0.yaml")
    cal = WorkCalendar({}, set())
    stays = {s.id: StageDurations(tuple(int(x) for x in rng.integers(20, 80, 2_000)), tuple(range(0, 60, 3)))
             for s in wf.stages}
    settings = Settings(samples=args.samples, method=args.method)
    for stay in stays.values():  # untimed: scipy.stats' import (~1 s) and the fits, once a process
        stay.remaining(0)
    took = cpu = 0.0
    for first in range(0, args.schools, args.batch):
        runs = schools(first, min(args.batch, args.schools - first), args.teachers, args.imports, rng, args.sums,
                       args.past)
        started, processor = time.perf_counter(), time.process_time()
        forecast_runs(runs, wf, cal, stays, settings)
        took, cpu = took + time.perf_counter() - started, cpu + time.process_time() - processor
    per = took / args.schools
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.schools:,} schools × {args.teachers} teachers × {args.imports} imports, {args.samples} samples, "
          f"{args.method}{' (sums)' if args.sums else ''}{f', {args.past:.0%} past' if args.past else ''}: {took:.1f} s ({cpu:.1f} s CPU, {cpu / args.schools * 1e6:.0f} µs per school), {per * 1000:.2f} ms per school; {PROVINCE:,} schools ≈ {per * PROVINCE:.0f} s; "
          f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
