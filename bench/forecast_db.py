"""The province forecast read from a real database (issue 11 speed): ``forecast_plan`` over every
open run of the benchmark province, history included, on SQLite and PostgreSQL.

``python -m bench.forecast_db --size small|full [--pg URL] [--method approximate] [--samples 500]
[--db FILE --reuse] [--pages N]``
builds the benchmark dataset (bench.generate: 50,000 schools and 1,000,000 teachers at ``full``),
imports its progress file once (the teachers), replaces that history with 12 weekly imports
(2021-12-06 … 2022-02-21; each teacher's figures grow every week, so every import holds a row per
teacher: 12,000,000 rows at ``full``), puts every run in online study and then, in a child process
(its own peak RSS), times the forecast on 2022-03-01: reading (runs, metrics, history, stage
durations) and the model, separately; ``--pages N`` times N school pages (``school_forecast``)
instead; ``--reimport`` times a changed and then an unchanged re-import of the province's
progress file into the built database (it adds an import dated after the forecast's day: run it
on a copy).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from bench.generate import SIZES, generate
from bench.ops import setup
from engine.calendar import load_calendar
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.deadline import local_date
from engine.imports import import_progress
from engine.models import Plan, ProgressImport, SchoolRun, Teacher, TeacherProgress
from engine.run_status import refresh

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2022, 3, 1, 9, tzinfo=TZ)
IMPORTS = [date(2021, 12, 6) + timedelta(weeks=i) for i in range(12)]
ROWS = 50_000


def build(engine: Engine, workdir: Path, size: str) -> int:
    ds = generate(workdir, SIZES[size])
    setup(engine, ds)
    import_progress(engine, ds.progress_csv, as_of=date(2021, 12, 1))  # the teachers
    with transaction(sessions(engine)) as s:
        teachers = s.execute(select(Teacher.id, Teacher.online_hours, Teacher.practice_hours)).all()
        s.execute(delete(TeacherProgress))
        tid = np.array([t[0] for t in teachers])
        online = np.array([t[1] for t in teachers])
        practice = np.array([t[2] for t in teachers])
        rng = np.random.default_rng(11)
        stall = rng.random(len(tid)) < 0.2
        rows = 0
        last: dict[str, np.ndarray] = {}
        for j, as_of in enumerate(IMPORTS):
            share = (j + 1) / len(IMPORTS)
            at = datetime(as_of.year, as_of.month, as_of.day, 18, tzinfo=TZ).astimezone(UTC)
            pid = s.scalar(insert(ProgressImport).values(
                at=at, as_of=as_of, file_name=f"week{j}.csv", sha256=f"{j:064d}", mapping="bench", actor="bench",
                full=False, total=len(tid), inserted=0, updated=len(tid), unchanged=0, left_school=0)
                .returning(ProgressImport.id))
            grown = np.where(stall & (j > 6), online * 7 / 12, online * share)  # a fifth stall in the last weeks
            week: dict[str, np.ndarray] = {"online_hours": np.round(grown, 1),
                                           "practice_hours": np.round(practice * share, 1)}
            for i in range(0, len(tid), ROWS):
                part = slice(i, i + ROWS)
                n = len(tid[part])
                # each row with the teacher's figures before it, as an import writes them (none on the first)
                prior = {f: last[f][part].tolist() if j else [None] * n for f in week}
                s.execute(insert(TeacherProgress), [
                    {"teacher_id": t, "import_id": pid, "online_hours": o, "practice_hours": p, "points_count": 3,
                     "evidence_count": 0, "evidence_result": None, "left_school": False,
                     "prior_online_hours": po, "prior_practice_hours": pp, "prior_points_count": 3 if j else None,
                     "prior_evidence_count": 0 if j else None}
                    for t, o, p, po, pp in zip(tid[part].tolist(), week["online_hours"][part].tolist(),
                                               week["practice_hours"][part].tolist(), prior["online_hours"],
                                               prior["practice_hours"], strict=True)])
            last = week
            rows += len(tid)
        # The teachers hold their last import's hours, as an import leaves them (the stalled fifth's
        # are below the file's): the gates, which read the teachers, and the forecast, which reads
        # the history, see the same hours. Points and evidence stay the file's on the teachers and
        # 3 and 0 in the history (real ones there put 13,096 schools at risk instead of 12,405: a
        # change of the scenario to make on its own; docs/benchmarks.md, 2026-12-03).
        s.execute(text(
            "UPDATE teacher SET online_hours = p.online_hours, practice_hours = p.practice_hours "
            "FROM teacher_progress AS p WHERE p.teacher_id = teacher.id AND p.import_id = :last"), {"last": pid})
        entered = datetime(2021, 12, 1, 9, tzinfo=TZ)
        s.execute(update(SchoolRun).values(state="online_study", stage_entered_at=entered))
        refresh(s, SchoolRun.id.is_not(None))
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return rows


def timed(url: str, samples: int, method: str, workers: int = 0, finished: float = 0.0) -> dict[str, float]:
    """The forecast on NOW, its reading and its model timed apart (what ``forecast_plan`` does),
    in ``workers`` processes (0: one per core, as ``rollout forecast`` does). ``finished``: that
    share of the runs, spread evenly, left out as an office's finished schools are (late in the year)."""
    from engine.calendar.memo import remembered
    from engine.forecast import Settings, forecast_runs
    from engine.forecast.cores import workers_for
    from engine.forecast.data import open_runs, run_inputs, stage_durations
    from engine.forecast.pace import TeacherSums
    from engine.forecast.sums import name_shown
    from engine.run_status import ensure_current
    from engine.workflow.versions import workflow_for_version

    loop = machine_loop()
    engine = make_engine(url)
    settings = Settings(samples=samples, method=method, workers=workers)
    clock = FixedClock(NOW)
    with sessions(engine)() as s:
        t0, c0, w0 = time.perf_counter(), time.process_time(), _children_cpu()
        plan = s.scalars(select(Plan)).one()
        ensure_current(s, plan.id)
        wf = workflow_for_version(s, plan.workflow_version_id)
        calendar = remembered(load_calendar(s))
        today = local_date(clock.now(), plan.timezone)
        runs = [r for i, r in enumerate(open_runs(s, plan, wf, clock.now()))
                if int((i + 1) * finished) == int(i * finished)]  # every 1/finished-th run left out
        cores = workers_for(s, settings.workers)
        durations: dict[str, Any] = {}
        inputs = run_inputs(s, plan, wf, runs, today, calendar, settings.window, settings.method, cores,
                            also=lambda: durations.update(stage_durations(s, plan, wf, clock.now(), today, calendar)))
        t1, c1, w1 = time.perf_counter(), time.process_time(), _children_cpu()
        named = any(isinstance(r.history, TeacherSums) for r in inputs)
        # the model, and the shown teachers' names read here as each chunk of forecasts arrives
        found = forecast_runs(inputs, wf, calendar, durations, settings, cores,
                              then=(lambda part: name_shown(s, part)) if named else None)
        t2, c2, w2 = time.perf_counter(), time.process_time(), _children_cpu()
    return {"schools": len(found), "teachers": sum(r.history.teachers for r in inputs), "loop_s": loop, "read_s": t1 - t0,
            "model_s": t2 - t1, "total_s": t2 - t0,
            # this process's CPU seconds (SQLite's work included, PostgreSQL's server not, nor the
            # workers'): steadier than wall time on a shared machine
            "read_cpu_s": c1 - c0, "model_cpu_s": c2 - c1,
            # and the forked workers' (reaped when each phase's pool closes): the work, whatever the machine's load
            "read_workers_cpu_s": w1 - w0, "model_workers_cpu_s": w2 - w1,
            "at_risk": int(sum((f.p_miss_due or 0) >= 0.7 for f in found)),
            "workers": cores, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            # the largest worker's (forked: the parent's pages they only read are shared, counted in both)
            "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def machine_loop() -> float:
    """Seconds of 10,000,000 Python additions here: the machine's speed when its numbers were
    measured, reported beside them. A shared machine's days differ: 0.64-0.66 s on 2026-12-07,
    0.89-1.79 s on 2026-12-08, when the same province forecast took 1.3-1.8x its time."""
    t0, total = time.perf_counter(), 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t0


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def pages(url: str, count: int) -> dict[str, float]:
    """``school_forecast`` (the school page's call, default settings) for ``count`` schools, one
    session each as a request has: the first (the stage durations not yet remembered, the calendar
    not yet asked) and the median of the others, in ms."""
    from engine.forecast import school_forecast

    engine = make_engine(url)
    clock = FixedClock(NOW)
    with sessions(engine)() as s:
        codes = list(s.scalars(select(SchoolRun.school_code).order_by(SchoolRun.id).limit(count)))
    took = []
    for code in codes:
        with sessions(engine)() as s:
            t0 = time.perf_counter()
            school_forecast(s, clock, code)
            took.append((time.perf_counter() - t0) * 1000)
    rest = sorted(took[1:])
    return {"pages": len(took), "first_ms": took[0], "median_ms": rest[len(rest) // 2] if rest else took[0],
            "max_ms": max(rest) if rest else took[0]}


def reimport(url: str, size: str) -> dict[str, float]:
    """Rows per second of a changed re-import (every teacher's online hours one more than in the
    file the teachers came from: 1,000,000 updates and history rows at ``full``, over the 12 M-row
    history) and of the same file again (nothing changed), dated 2022-03-02 (after ``NOW``)."""
    import csv

    engine = make_engine(url)
    out: dict[str, float] = {"loop_s": machine_loop()}
    with tempfile.TemporaryDirectory() as tmp:
        ds = generate(Path(tmp), SIZES[size])
        changed = Path(tmp) / "changed.csv"
        with ds.progress_csv.open(encoding="gb18030", newline="") as src, \
                changed.open("w", encoding="gb18030", newline="") as dst:
            reader, writer = csv.reader(src), csv.writer(dst)
            writer.writerow(next(reader))
            for row in reader:
                row[3] = f"{float(row[3]) + 1:g}"
                writer.writerow(row)
        for name in ("changed", "unchanged"):
            out[f"{name}_checkpointed"] = checkpoint(engine)
            t0 = time.perf_counter()
            result = import_progress(engine, changed, as_of=date(2022, 3, 2))
            took = time.perf_counter() - t0
            out |= {f"{name}_s": took, f"{name}_rows_per_s": result.total / took, f"{name}_updated": result.updated}
    engine.dispose()
    return out


def checkpoint(engine: Engine) -> bool:
    """PostgreSQL writes a page's full image into the WAL the first time it changes after a
    checkpoint, and an office's weekly import always comes after one (every 5 minutes by default):
    without one just before, a database built or copied minutes earlier lets the import skip most
    of those images, and the same import measured 72.6–83.1k rows/s from run to run. True when the
    checkpoint was taken (it needs a superuser or ``pg_checkpoint``); SQLite keeps no such images."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        try:
            conn.execute(text("CHECKPOINT"))
        except DBAPIError:
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (an empty database) instead of a SQLite file")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--method", choices=("bootstrap", "approximate"), default="approximate")
    parser.add_argument("--workers", type=int, default=0, help="processes (0: one per core; 1: this one only)")
    parser.add_argument("--finished", type=float, default=0.0,
                        help="share of the schools left out of the forecast as finished (0.1: every tenth)")
    parser.add_argument("--db", default=None, help="SQLite file to build into and keep (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="time the forecast on an already built --db/--pg")
    parser.add_argument("--pages", type=int, default=0, help="time this many school pages instead of the province")
    parser.add_argument("--reimport", action="store_true", help="time a changed and an unchanged re-import (on --reuse)")
    parser.add_argument("--time-only", default=None, help=argparse.SUPPRESS)  # the child: a built database's URL
    args = parser.parse_args(argv)
    if args.time_only and args.pages:
        print(json.dumps(pages(args.time_only, args.pages)))
        return
    if args.time_only:
        print(json.dumps(timed(args.time_only, args.samples, args.method, args.workers, args.finished)))
        return
    if args.reimport:
        print(json.dumps(reimport(args.pg or f"sqlite:///{args.db}", args.size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite:///{args.db or Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        if not args.reuse:
            t0 = time.perf_counter()
            rows = build(engine, Path(tmp), args.size)
            print(f"built {args.size} on {engine.dialect.name}: {rows:,} history rows in {time.perf_counter() - t0:.0f} s",
                  flush=True)
        engine.dispose()
        child = subprocess.run([sys.executable, "-m", "bench.forecast_db", "--time-only", url, "--samples",
                                str(args.samples), "--method", args.method, "--pages", str(args.pages),
                                "--workers", str(args.workers), "--finished", str(args.finished)],
                               capture_output=True, text=True)
        if child.returncode:
            raise SystemExit(child.stderr)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps({"backend": engine.dialect.name, "size": args.size, "samples": args.samples,
                          "method": args.method, "finished": args.finished} | result))


if __name__ == "__main__":
    main()
