"""Single advances from many concurrent clients on PostgreSQL: latency and exactly-once.

Each school of a sample of ready schools is attempted by several clients at once, every attempt
carrying the version it read before the storm (as a web form would). Exactly one attempt per
school may win; the rest must fail cleanly (StaleStateError / TransitionRefused). Afterwards the
database must show each school advanced exactly once with exactly one audit event — no lost and
no doubled transition. This op commits: it runs last, on a throw-away schema.

The 100 clients are threads spread over several processes (``PROCESSES``), as web workers would
be, so the load generator is not one interpreter's GIL. Each process serves its clients FIFO on
fewer worker threads than it has clients, one connection each — a real deployment's shape, and
PostgreSQL's default ``max_connections`` is 100 — so a client's latency includes waiting its turn.
A baseline in the same run: the same advance by one client alone (the service time, no queueing).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.errors import RolloutError
from engine.models import AuditEvent, SchoolRun
from engine.runs import Actor, fire
from engine.workflow.machine import machine_for
from engine.workflow.versions import workflow_for_version

if TYPE_CHECKING:
    from bench.generate import Dataset

CLIENTS = 100
PROCESSES = 4
POOL_PER_PROCESS = 15  # 60 connections in all, well inside the default max_connections = 100
SCHOOLS = 500
ATTEMPTS_PER_SCHOOL = 4
SOLO = 200  # schools advanced one after another by a single client: the no-queueing baseline
COUNTY = Actor("县项目办", "county_office")


def _attempt(factory: Any, clock: FixedClock, code: str, version: int) -> tuple[float, bool]:
    t0 = time.perf_counter()
    with factory() as session:
        try:
            fire(session, clock, school_code=code, trigger="advance", actor=COUNTY, expected_version=version)
            session.commit()
            won = True
        except RolloutError:
            session.rollback()
            won = False
    return time.perf_counter() - t0, won


def _client_process(url: str, codes: list[str], versions: dict[str, int], threads: int, start_at: float,
                    out: Any) -> None:
    """One worker process: ``threads`` clients sharing a pool, all attempting ``codes`` in order."""
    from bench.ops import IDLE

    engine = make_engine(url, pool_size=POOL_PER_PROCESS, max_overflow=0)
    factory = sessions(engine)
    warm = [engine.connect() for _ in range(POOL_PER_PROCESS)]  # latency is the advance, not the handshake
    for conn in warm:
        conn.close()
    clock = FixedClock(IDLE)
    with factory() as session:  # a server that has answered one request: its parse caches are warm
        machine_for(workflow_for_version(session, session.scalars(select(SchoolRun.workflow_version_id)).first() or 0))
    time.sleep(max(0.0, start_at - time.time()))  # every process starts the storm together
    # ``threads`` clients each wait for their answer; the process serves them FIFO on as many
    # worker threads as it has connections, as a web worker's thread pool does. (Clients taking
    # connections themselves starved some of them for the whole run: the pool is not fair.)
    with ThreadPoolExecutor(max_workers=POOL_PER_PROCESS) as server, ThreadPoolExecutor(max_workers=threads) as clients:
        def client(code: str) -> tuple[float, bool]:
            t0 = time.perf_counter()
            _service, won = server.submit(_attempt, factory, clock, code, versions[code]).result()
            return time.perf_counter() - t0, won

        results = list(clients.map(client, codes))
    engine.dispose()
    out.put([(code, t, won) for code, (t, won) in zip(codes, results, strict=True)])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)


def single_advance(engine: Engine, ds: Dataset) -> dict[str, Any]:
    from bench.ops import IDLE, make_ready

    url = engine.url.render_as_string(hide_password=False)
    factory = sessions(engine)
    codes = ds.ready[:SCHOOLS]
    solo = ds.ready[SCHOOLS:SCHOOLS + SOLO]
    with transaction(factory) as session:
        make_ready(session, ds)
    with factory() as session:
        versions = dict(session.execute(select(SchoolRun.school_code, SchoolRun.version)
                                        .where(SchoolRun.school_code.in_(codes + solo))).all())
    clock = FixedClock(IDLE)
    solo_times = [_attempt(factory, clock, c, versions[c])[0] for c in solo]

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 8.0  # time for every process to import, connect and warm up
    threads = CLIENTS // PROCESSES
    procs = [ctx.Process(target=_client_process, args=(url, codes, versions, threads, start_at, queue))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [row for _ in procs for row in queue.get(timeout=600)]
    for p in procs:
        p.join(timeout=60)
    total = max(0.0, time.time() - start_at)
    wins: dict[str, int] = {}
    for code, _t, won in results:
        wins[code] = wins.get(code, 0) + won
    with factory() as session:
        moved = session.scalar(select(func.count()).select_from(SchoolRun).where(
            SchoolRun.school_code.in_(codes), SchoolRun.state == "practice")) or 0
        events = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.school_code.in_(codes), AuditEvent.trigger == "advance", AuditEvent.actor == COUNTY.name)) or 0
    latencies = [t for _c, t, _w in results]
    return {
        "times": [total], "rows": len(results), "clients": CLIENTS, "processes": PROCESSES,
        "p50_ms": _pct(latencies, 0.5), "p90_ms": _pct(latencies, 0.9), "p99_ms": _pct(latencies, 0.99),
        "winners_p99_ms": _pct([t for _c, t, w in results if w], 0.99),
        "losers_p99_ms": _pct([t for _c, t, w in results if not w], 0.99),
        "solo_p50_ms": _pct(solo_times, 0.5), "solo_p99_ms": _pct(solo_times, 0.99),
        "throughput": round(len(results) / total, 1) if total else None,
        "schools": len(codes), "won_once": sum(1 for n in wins.values() if n == 1),
        "doubled": sum(1 for n in wins.values() if n > 1), "lost": len(codes) - moved, "audit_events": events,
    }
