"""How long the pure forecast takes per school, and what that makes a province (issue 11 speed).

``python -m bench.forecast_speed [--schools 500] [--teachers 20] [--imports 12] [--samples 1000]``
times ``engine.forecast.forecast_run`` over synthetic schools (teachers × imports of history, the
online-study gate) and extrapolates linearly to 50,000 schools. It times the model only; reading
the inputs (``engine.forecast.data``) is extra.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np

from engine.calendar import WorkCalendar
from engine.forecast import RunInput, Settings, TeacherHistory, forecast_runs
from engine.workflow import WORKFLOWS_DIR, load_workflow_file

PROVINCE = 50_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--teachers", type=int, default=20)
    parser.add_argument("--imports", type=int, default=12)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    wf = load_workflow_file(WORKFLOWS_DIR / "whole-school-2.0.yaml")
    cal = WorkCalendar({}, set())
    days = np.arange(-(args.imports - 1) * 5, 1, 5)
    runs = []
    for s in range(args.schools):
        gains = rng.gamma(1.0, 1.5, (args.teachers, args.imports))
        online = np.cumsum(gains, axis=1)
        h = TeacherHistory(tuple(f"T{i}" for i in range(args.teachers)), days,
                           {"online_hours": online, "practice_hours": np.zeros_like(online),
                            "points_count": np.full_like(online, 3.0), "evidence_count": np.zeros_like(online)})
        values = {"online_25h_share": float(np.mean(online[:, -1] >= 25)), "points_chosen_share": 1.0}
        runs.append(RunInput(s + 1, f"S{s}", "online_study", date(2022, 3, 1), date(2022, 5, 31), None, 30, h, values))
    settings = Settings(samples=args.samples)
    started = time.perf_counter()
    forecast_runs(runs, wf, cal, {}, settings)
    took = time.perf_counter() - started
    per = took / args.schools
    print(f"{args.schools} schools × {args.teachers} teachers × {args.imports} imports, {args.samples} samples: "
          f"{took:.2f} s, {per * 1000:.1f} ms per school; {PROVINCE:,} schools ≈ {per * PROVINCE:.0f} s")


if __name__ == "__main__":
    main()
