"""Extension requests at province scale (issue 10's lists): ``python -m bench.extensions URL [REPS]``
on a database ``bench.ops setup`` (and ``import_csv``) built at ``full`` size.

Adds a request at every ninth planning school (5,000 at full size) unless the database has
requests already, then times, each a median of REPS (default 5) after one warm-up: the plan's
open requests (``pending_requests``), the county officer's 延期审批 queue and a school page, the
pages through the real ASGI app as in ``bench.web_ops``. Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from bench import ops, web_ops
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.extension import REQUEST, pending_requests, request_extension
from engine.models import AuditEvent, SchoolRun
from engine.runs import Actor


def add_requests(url: str) -> int:
    engine = make_engine(url)
    with transaction(sessions(engine)) as s:
        if s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.trigger == REQUEST)):
            return 0
        codes = s.scalars(select(SchoolRun.school_code).where(SchoolRun.state == "planning", SchoolRun.id % 9 == 1)).all()
        for code in codes:
            request_extension(s, FixedClock(ops.IDLE), school_code=code, due=ops.IDLE.date() + timedelta(days=30),
                              reason="教师外出培训", actor=Actor("bench-school", "school_admin"))
    engine.dispose()
    return len(codes)


def timed(body: Callable[[], object], reps: int) -> float:
    body()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        body()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 1)


def main(url: str, reps: int) -> dict[str, object]:
    added = add_requests(url)
    engine = make_engine(url)
    with sessions(engine)() as s:
        pending = len(pending_requests(s))
        plan_ms = timed(lambda: pending_requests(s), reps)
    school = f"/schools/{web_ops.first_school(engine)}"
    county = web_ops._county(engine)
    with web_ops._signed_in(engine, FixedClock(ops.IDLE), "county_office", county) as client:
        queue_ms = timed(lambda: client.get("/extensions").raise_for_status(), reps)
        school_ms = timed(lambda: client.get(school).raise_for_status(), reps)
    engine.dispose()
    return {"added": added, "pending": pending, "pending_requests_ms": plan_ms, "county_queue_ms": queue_ms,
            "school_page_ms": school_ms}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5)))
