"""One benchmark operation per child process (``python -m bench.ops OP URL WORKDIR SIZE REPS``).

A child of its own gives each heavy operation its own peak RSS (ru_maxrss) and keeps one
operation's caches out of the next one's timing. Prints one JSON line: times, rows, peak memory.
Write-heavy operations run in a transaction that is rolled back, so every repetition sees the
same starting state.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, bindparam, select, update
from sqlalchemy.orm import Session

from bench import baselines, web_ops
from bench.generate import SIZES, Dataset, generate
from engine.audit import EventDraft, append_events, verify_chains
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction, upgrade
from engine.imports import import_progress, import_regions, import_schools, seed_calendar
from engine.metrics import metric_values
from engine.models import AuditEvent, Plan, SchoolRun
from engine.plan import load_plan
from engine.run_status import refresh
from engine.runs import Actor, advance_all_ready
from engine.status import status_table
from engine.workflow.loader import load_workflow_file
from engine.workflow.versions import register_workflow, shipped_workflow_paths, workflow_for_version
from service.sweep import run_sweep

TZ = ZoneInfo("Asia/Shanghai")
IDLE = datetime(2021, 10, 8, 9, tzinfo=TZ)  # nothing due: the pilot deadline is 53 days away
DUE = datetime(2021, 11, 27, 9, tzinfo=TZ)  # 3 days before the pilot deadline: one reminder per pilot school
SYSTEM = Actor("system", "system")
Timed = Callable[[Engine, Dataset], int]  # runs the operation once, returns rows handled


def dataset(workdir: Path, size: str) -> Dataset:
    return generate(workdir, SIZES[size])  # deterministic: regenerating gives the same bytes


def setup(engine: Engine, ds: Dataset) -> int:
    """Schema, regions, schools, contacts, calendar, workflow, plan: the state before the benchmarks."""
    from notifications.contacts import import_contacts

    upgrade(engine)
    clock = FixedClock(datetime(2021, 6, 20, 9, tzinfo=TZ))
    wf_path = next(p for p in shipped_workflow_paths() if p.name == "whole-school-2.0.yaml")
    with transaction(sessions(engine)) as session:
        import_regions(session, ds.regions)
        import_schools(session, ds.schools)
        import_contacts(session, ds.contacts)
        seed_calendar(session, [2021, 2022], clock)
        register_workflow(session, load_workflow_file(wf_path), wf_path.read_text(encoding="utf-8"), clock)
        load_plan(session, ds.plan, clock, actor="河南省项目办", role="province_office")
    return len(ds.school_codes)


def _rolled_back(engine: Engine, body: Callable[[Session], int]) -> int:
    with sessions(engine)() as session:
        try:
            return body(session)
        finally:
            session.rollback()


def import_csv(engine: Engine, ds: Dataset) -> int:
    return import_progress(engine, ds.progress_csv).total


def import_xlsx(engine: Engine, ds: Dataset) -> int:
    return import_progress(engine, ds.progress_xlsx).total


def gates(engine: Engine, ds: Dataset) -> int:
    with sessions(engine)() as session:
        plan = session.scalars(select(Plan)).one()
        wf = workflow_for_version(session, plan.workflow_version_id)
        return len(metric_values(session, wf, select(SchoolRun.id, SchoolRun.school_code).where(SchoolRun.plan_id == plan.id)))


def make_ready(session: Session, ds: Dataset) -> None:
    """Put the ready schools in online study, where their teachers' hours already pass the gates."""
    table = cast(Table, SchoolRun.__table__)
    session.connection().execute(
        update(table).where(table.c.school_code == bindparam("code")).values(state="online_study"),
        [{"code": c} for c in ds.ready],
    )
    refresh(session, SchoolRun.school_code.in_(ds.ready))  # what a real transition would have done


def advance(engine: Engine, ds: Dataset) -> int:
    def body(session: Session) -> int:
        make_ready(session, ds)
        t0 = time.perf_counter()
        moved = advance_all_ready(session, FixedClock(IDLE), actor=SYSTEM, auto_only=True).advanced
        _mark(time.perf_counter() - t0)
        if moved != len(ds.ready):
            raise AssertionError(f"advanced {moved}, expected {len(ds.ready)}")
        return moved
    return _rolled_back(engine, body)


def sweep_idle(engine: Engine, ds: Dataset) -> int:
    return _rolled_back(engine, lambda s: run_sweep(s, FixedClock(IDLE)).items["reminder"] or len(ds.school_codes))


def sweep_due(engine: Engine, ds: Dataset) -> int:
    return _rolled_back(engine, lambda s: run_sweep(s, FixedClock(DUE)).items["reminder"])


def seed_events(engine: Engine, ds: Dataset) -> int:
    """~20 events per chain, appended in bulk through the engine so hashes and payloads are real."""
    at = datetime(2021, 7, 1, 9, tzinfo=TZ)
    chains = max(1, ds.size.events // 20)
    done = 0
    while done < ds.size.events:
        n = min(50_000, ds.size.events - done)
        drafts = [EventDraft(chain=f"bench:{(done + i) % chains}", at=at, actor="bench", role="system",
                             trigger="advance", school_code=ds.school_codes[(done + i) % len(ds.school_codes)],
                             from_state="online_study", to_state="practice",
                             gates=[{"gate": "online_25h", "value": 0.97, "passed": True}]) for i in range(n)]
        with transaction(sessions(engine)) as session:
            append_events(session, drafts)
        done += n
    return done


def verify(engine: Engine, ds: Dataset) -> int:
    report = verify_chains(engine)
    if not report.ok:
        raise AssertionError(report.problems[:3])
    return report.events


def status(engine: Engine, ds: Dataset) -> int:
    with sessions(engine)() as session:
        _wf, rows = status_table(session, FixedClock(IDLE))
        return sum(r.schools for r in rows)


def count_events(engine: Engine) -> int:
    from sqlalchemy import func

    with sessions(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


_inner: list[float] = []


def _mark(seconds: float) -> None:
    """An operation that needs untimed preparation reports its own timing of the measured part."""
    _inner.append(seconds)


OPS: dict[str, Timed] = {
    "import_csv": import_csv, "import_xlsx": import_xlsx, "gates": gates, "advance": advance,
    "sweep_idle": sweep_idle, "sweep_due": sweep_due, "verify": verify, "status": status,
    "seed_events": seed_events,
    "web_overview_province": web_ops.page_timer("/", "province", IDLE, _mark),
    "web_overview_county": web_ops.page_timer("/", "county", IDLE, _mark),
    "web_overdue_province": web_ops.page_timer("/overdue", "province", IDLE, _mark),
    "web_overdue_county": web_ops.page_timer("/overdue", "county", IDLE, _mark),
    "web_school_county": web_ops.page_timer(lambda e: f"/schools/{web_ops.first_school(e)}", "county", IDLE, _mark),
    "web_schools_xlsx_city": web_ops.page_timer(lambda e: f"/schools.xlsx?region={web_ops.first_city(e)}", "province",
                                                IDLE, _mark),
    # 5,000 rows at full size (the pilot batch, province-wide): issue 10's XLSX target as such.
    "web_schools_xlsx_5000": web_ops.page_timer("/schools.xlsx?stage=pilot", "province", IDLE, _mark),
    "naive_import": baselines.naive_import, "floor_import": baselines.floor_import,
    "floor_import_xlsx": baselines.floor_import_xlsx,
    "naive_advance": baselines.naive_advance, "floor_advance": baselines.floor_advance,
}
def main(argv: list[str]) -> None:
    op, url, workdir, size, reps = argv[0], argv[1], Path(argv[2]), argv[3], int(argv[4])
    ds = dataset(workdir, size) if op == "setup" else _load(workdir, size)
    engine = make_engine(url)
    if op == "explain":
        from bench.explain import explain

        print(json.dumps({"op": op, "plans": explain(engine, IDLE)}, ensure_ascii=False))
        engine.dispose()
        return
    if op == "single_advance":
        from bench.concurrency import single_advance

        result = single_advance(engine, ds)
        engine.dispose()
        result.update(op=op, peak_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
        print(json.dumps(result))
        return
    times, rows = [], 0
    for _ in range(reps):
        _inner.clear()
        t0 = time.perf_counter()
        rows = setup(engine, ds) if op == "setup" else OPS[op](engine, ds)
        times.append(_inner[-1] if _inner else time.perf_counter() - t0)
    engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"op": op, "times": times, "rows": rows, "peak_mb": round(peak, 1), **baselines.extra}))


def _load(workdir: Path, size: str) -> Dataset:
    """The dataset's file names and code lists without rewriting the files."""
    from bench.generate import describe

    return describe(workdir, SIZES[size])


if __name__ == "__main__":
    main(sys.argv[1:])
