"""Benchmark: the dry run and the move of a whole plan to a new workflow version (issue 15).

``python -m bench.version_move [--size small|full] [--pg URL] [--workdir DIR]``: the bench
dataset (50,000 schools and 1,000,000 teachers at ``full``) loaded as ``bench.ops.setup`` does, with
teachers' progress imported and the ready fifth of the schools put in online study; then version
"2" of the shipped workflow (online hours 25 → 20, the example of docs/changing-mid-year.md) is
loaded, and timed in the same run:

* ``gates`` — one metric aggregation over the plan's runs, the floor any re-judging must pay;
* ``dry_run`` — ``preview_move``: every open run judged under both versions, due and reminder
  dates, per-county summary;
* ``move`` — ``apply_move`` (in a transaction rolled back afterwards): the dry run again, the
  version-guarded UPDATE, one event per run, stored status refreshed.

Target (issue 15): dry run and move of 50,000 runs each ≤ 60 s on both databases. Prints JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import Engine, select, text

from bench.generate import SIZES, generate
from bench.ops import IDLE, import_csv, make_ready, setup
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.metrics import metric_values
from engine.models import Plan, SchoolRun
from engine.runs import Actor
from engine.version_apply import apply_move
from engine.version_move import preview_move
from engine.workflow.loader import load_workflow_text
from engine.workflow.versions import register_workflow, shipped_workflow_paths, workflow_for_version

TZ = ZoneInfo("Asia/Shanghai")
OFFICE = Actor("河南省项目办", "province_office")


def _register_v2(engine: Engine) -> None:
    path = next(p for p in shipped_workflow_paths() if p.name == "whole-school-2.0.yaml")
    data = copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))
    data["version"] = "2"
    data["metrics"]["online_25h_share"]["where"] = [{"field": "online_hours", "op": ">=", "value": 20}]
    source = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    with transaction(sessions(engine)) as session:
        register_workflow(session, load_workflow_text(source, "whole-school-2.0-v2.yaml"), source,
                          FixedClock(datetime(2021, 10, 1, 9, tzinfo=TZ)))


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(engine: Engine, workdir: Path, size: str) -> dict[str, Any]:
    ds = generate(workdir, SIZES[size])
    t_setup, _ = _timed(lambda: (setup(engine, ds), import_csv(engine, ds)))
    with transaction(sessions(engine)) as session:
        make_ready(session, ds)
    _register_v2(engine)
    clock = FixedClock(IDLE)
    factory = sessions(engine)
    with factory() as session:
        plan = session.scalars(select(Plan)).one()
        wf = workflow_for_version(session, plan.workflow_version_id)
        t_gates, values = _timed(lambda: metric_values(
            session, wf, select(SchoolRun.id, SchoolRun.school_code).where(SchoolRun.plan_id == plan.id)))
        t_dry, preview = _timed(lambda: preview_move(session, clock, plan_code=plan.code, to="whole-school-2.0@2"))
        session.rollback()
    with factory() as session:
        try:
            t_move, moved = _timed(lambda: apply_move(session, clock, plan_code=None, to="whole-school-2.0@2",
                                                      reason="网络研修调整为20学时", actor=OFFICE))
        finally:
            session.rollback()
    becomes_ready = sum(r["becomes_ready"] for r in preview.summary())
    return {"size": size, "backend": engine.dialect.name, "schools": len(ds.school_codes), "runs": len(values),
            "setup_s": round(t_setup, 1), "gates_s": round(t_gates, 2), "dry_run_s": round(t_dry, 2),
            "move_s": round(t_move, 2), "moved": len(moved.moves), "becomes_ready": becomes_ready,
            "dry_run_vs_gates": round(t_dry / t_gates, 1) if t_gates else None,
            "move_vs_gates": round(t_move / t_gates, 1) if t_gates else None, "target_s": 60}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--pg", default=None, help="PostgreSQL base URL: measure there too (a throw-away schema)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rollout-bench-move-"))
    results = []
    engine = make_engine(f"sqlite:///{workdir / 'move.db'}")
    results.append(measure(engine, workdir, args.size))
    engine.dispose()
    if args.pg:
        schema = f"bench_move_{int(time.time())}"
        admin = make_engine(args.pg)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.pg else "?"
        engine = make_engine(f"{args.pg}{sep}options=-csearch_path%3D{schema}")
        try:
            results.append(measure(engine, workdir, args.size))
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()
    print(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
