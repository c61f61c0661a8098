"""Single advances from many concurrent clients on PostgreSQL: latency and exactly-once.

Each school of a sample of ready schools is attempted by several clients at once, every attempt
carrying the version it read before the storm (as a web form would). Exactly one attempt per
school may win; the rest must fail cleanly (StaleStateError / TransitionRefused). Afterwards the
database must show each school advanced exactly once with exactly one audit event — no lost and
no doubled transition. This op commits: it runs last, on a throw-away schema.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.errors import RolloutError
from engine.models import AuditEvent, SchoolRun
from engine.runs import Actor, fire

if TYPE_CHECKING:
    from .generate import Dataset

# PostgreSQL's default max_connections is 100 and other sessions (the runner, psql, other test
# runs) hold a few, so 100 clients cannot all connect; 80 is the most this default server allows safely.
CLIENTS = 80
SCHOOLS = 500
ATTEMPTS_PER_SCHOOL = 4
COUNTY = Actor("县项目办", "county_office")


def single_advance(engine: Engine, ds: Dataset) -> dict[str, Any]:
    from .ops import IDLE, make_ready

    pool = make_engine(engine.url.render_as_string(hide_password=False), pool_size=CLIENTS, max_overflow=0)
    factory = sessions(pool)
    codes = ds.ready[:SCHOOLS]
    with transaction(factory) as session:
        make_ready(session, ds)
    with factory() as session:
        versions = dict(session.execute(select(SchoolRun.school_code, SchoolRun.version)
                                        .where(SchoolRun.school_code.in_(codes))).all())
    clock = FixedClock(IDLE)
    warm = [pool.connect() for _ in range(CLIENTS)]  # connect up front: latency is the advance, not the TCP handshake
    for conn in warm:
        conn.close()

    def attempt(code: str) -> tuple[float, bool]:
        t0 = time.perf_counter()
        with factory() as session:
            try:
                fire(session, clock, school_code=code, trigger="advance", actor=COUNTY, expected_version=versions[code])
                session.commit()
                won = True
            except RolloutError:
                session.rollback()
                won = False
        return time.perf_counter() - t0, won

    jobs = [c for _ in range(ATTEMPTS_PER_SCHOOL) for c in codes]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool_exec:
        results = list(pool_exec.map(attempt, jobs))
    total = time.perf_counter() - started
    wins: dict[str, int] = {}
    for code, (_, won) in zip(jobs, results, strict=True):
        wins[code] = wins.get(code, 0) + won
    with factory() as session:
        moved = session.scalar(select(func.count()).select_from(SchoolRun).where(
            SchoolRun.school_code.in_(codes), SchoolRun.state == "practice")) or 0
        events = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.school_code.in_(codes), AuditEvent.trigger == "advance", AuditEvent.actor == COUNTY.name)) or 0
    pool.dispose()
    latencies = sorted(t for t, _ in results)
    return {
        "times": [total], "rows": len(jobs), "clients": CLIENTS,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "schools": len(codes), "won_once": sum(1 for n in wins.values() if n == 1),
        "doubled": sum(1 for n in wins.values() if n > 1), "lost": len(codes) - moved, "audit_events": events,
    }
