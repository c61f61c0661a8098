"""The 承训单位 ranking's cost beside the region table it sits next to, at ``small`` size (5,000
schools, 100,000 teachers, 8 contractors round-robin), on SQLite or PostgreSQL:

    nice -n 15 .venv/bin/python -m bench.contractors sqlite:////tmp/contractors.db
    nice -n 15 .venv/bin/python -m bench.contractors 'postgresql://…?options=-csearch_path%3Dsome_schema'

Best of five for each; the numbers go in docs/benchmarks.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bench.ops import dataset, setup
from engine.clock import FixedClock
from engine.contractors import contractor_ranking
from engine.db import make_engine, sessions, transaction
from engine.imports import import_progress
from engine.models import Plan, School, SchoolRun
from engine.rates import rate_values
from engine.status import status_table
from engine.workflow.versions import workflow_for_version


def best(f: Callable[[], Any], n: int = 5) -> float:
    out = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        f()
        out = min(out, time.perf_counter() - start)
    return out


def main(argv: list[str]) -> None:
    url = argv[0]
    ds = dataset(Path(tempfile.mkdtemp(prefix="bench-contractors-")), "small")
    engine = make_engine(url)
    setup(engine, ds)
    import_progress(engine, ds.progress_csv)
    with transaction(sessions(engine)) as s:
        for k in range(8):  # seed 002: 8 contractors
            s.execute(update(SchoolRun).where(SchoolRun.id % 8 == k).values(contractor=f"承训单位{k + 1}"))
    clock = FixedClock(datetime(2021, 12, 1, 1, tzinfo=UTC))
    province = School.province_code == "410000"
    with sessions(engine)() as s:
        plan = s.scalars(select(Plan)).one()
        wf = workflow_for_version(s, plan.workflow_version_id)
        assigned = SchoolRun.contractor.is_not(None)
        timings = {
            "status_table (the region table's counts)": lambda: status_table(s, clock, plan_code=plan.code, region="410000"),
            "rate_values by city, scan_all (the region table's rates)":
                lambda: rate_values(s, wf, plan.id, School.city_code, province, scan_all=True),
            "rate_values by contractor": lambda: rate_values(s, wf, plan.id, SchoolRun.contractor, assigned, province),
            "rate_values by contractor, scan_all":
                lambda: rate_values(s, wf, plan.id, SchoolRun.contractor, assigned, province, scan_all=True),
            "contractor_ranking, province, scan_all (what the page adds)":
                lambda: contractor_ranking(s, clock, plan, province, scan_all=True),
        }
        for name, f in timings.items():
            print(f"{name}: {best(f):.3f} s")
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
