"""Run every benchmark on SQLite and (with --pg or ROLLOUT_TEST_PG_URL) PostgreSQL; write docs/benchmarks.md.

Each operation runs in its own child process (bench.ops) so its peak RSS is its own. Medians are over
``--reps`` runs (default 3). Imports after the first are re-imports of the same file (every row
unchanged); write-heavy operations run in a transaction that is rolled back, so each repetition
starts from the same state.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.generate import SIZES
from bench.report import render, splice
from engine.db import make_engine

# (operation, label, engine op, naive op, floor op, target text)
OPERATIONS: list[tuple[str, str, str | None, str | None, str]] = [
    ("import_csv", "progress import, CSV (GB18030)", "naive_import", "floor_import",
     "≥ 100k rows/s PG, ≥ 50k SQLite; peak RSS < 400 MB"),
    ("import_xlsx", "progress import, XLSX", None, "floor_import_xlsx", "≥ 20k rows/s"),
    ("gates", "gate evaluation, all schools", None, None, "< 2 s"),
    ("advance", "bulk advance with audit (ready schools)", "naive_advance", "floor_advance", "≤ 3× floor; ≥ 10× faster than naive"),
    ("sweep_idle", "sweep, nothing due", None, None, "< 1 s"),
    ("sweep_due", "sweep, reminders due (pilot schools)", None, None, "< 3 s"),
    ("verify", "audit verify", None, None, "≥ 200k events/s, constant memory"),
    ("status", "status table, province", None, None, "< 300 ms"),
    ("web_overview_province", "web overview page, province officer", None, None, "< 300 ms server time"),
    ("web_overdue_province", "web overdue list (first page), province officer", None, None, "< 300 ms server time"),
    ("web_overview_county", "web overview page, county officer", None, None, "< 300 ms server time"),
    ("web_overdue_county", "web overdue list (first page), county officer", None, None, "< 300 ms server time"),
    ("web_school_county", "web school page with its teachers, county officer", None, None, "≤ 50 ms server time"),
    ("web_schools_xlsx_city", "XLSX of one city's school list (~2,900 rows at full size)", None, None,
     "≤ 2 s for 5,000 rows, peak < 200 MB"),
    ("web_schools_xlsx_5000", "XLSX of the pilot schools' list (5,000 rows at full size)", None, None,
     "≤ 2 s, peak < 200 MB"),
]


def child(op: str, url: str, workdir: Path, size: str, reps: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.ops", op, url, str(workdir), size, str(reps)],
                         check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def pg_schema(base: str) -> tuple[str, str]:
    name = "bench_" + uuid.uuid4().hex[:10]
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    admin.dispose()
    return name, f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"


def drop_schema(base: str, name: str) -> None:
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def bench_backend(backend: str, url: str, workdir: Path, size: str, reps: int, log: Any,
                  only: set[str] | None = None) -> list[dict[str, Any]]:
    results = []
    log(f"[{backend}] setup")
    setup = child("setup", url, workdir, size, 1)
    results.append({"backend": backend, "op": "setup", "label": "setup (regions, schools, contacts, plan)",
                    "engine": setup})
    if only is None or "verify" in only:
        log(f"[{backend}] seeding audit events")
        child("seed_events", url, workdir, size, 1)
    if only is not None and "import_csv" not in only:
        log(f"[{backend}] loading teachers (untimed)")
        child("import_csv", url, workdir, size, 1)
    for op, label, naive, floor, target in OPERATIONS:
        if only is not None and op not in only:
            continue
        log(f"[{backend}] {op}")
        row: dict[str, Any] = {"backend": backend, "op": op, "label": label, "target": target,
                               "engine": child(op, url, workdir, size, reps)}
        if naive:
            row["naive"] = child(naive, url, workdir, size, 1)
        if floor:
            row["floor"] = child(floor, url, workdir, size, reps)
        results.append(row)
    log(f"[{backend}] query plans")
    results.append({"backend": backend, "op": "explain", "plans": child("explain", url, workdir, size, 1)["plans"]})
    if backend == "PostgreSQL" and (only is None or "single_advance" in only):
        log(f"[{backend}] single_advance (commits: runs last)")
        results.append({"backend": backend, "op": "single_advance", "target": "p99 < 50 ms, no lost or doubled",
                        "label": "single advance, concurrent clients", "engine": child("single_advance", url, workdir, size, 1)})
    return results


def machine(pg_url: str | None) -> dict[str, str]:
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "?")
    info = {"nproc": str(os.cpu_count()), "memory": f"{int(mem) // 1024} MB" if mem.isdigit() else mem,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "postgresql": "not run",
            "cpu": platform.processor() or platform.machine()}
    if pg_url:
        engine = make_engine(pg_url)
        with engine.connect() as conn:
            info["postgresql"] = str(conn.scalar(text("SHOW server_version")))
        engine.dispose()
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--pg", default=os.environ.get("ROLLOUT_TEST_PG_URL"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="docs/benchmarks.md", help="where to write the report ('-' for none)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--only", default=None, help="comma-separated operations, e.g. import_csv,gates,status")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"{datetime.now(UTC):%H:%M:%S} {msg}", file=sys.stderr, flush=True)

    only = set(args.only.split(",")) if args.only else None
    unknown = (only or set()) - {op for op, *_ in OPERATIONS} - {"single_advance"}
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        (workdir / "bench.db").unlink(missing_ok=True)  # a re-run in the same --workdir starts fresh
        results = bench_backend("SQLite", f"sqlite:///{workdir / 'bench.db'}", workdir, args.size, args.reps, log, only)
        if args.pg:
            name, url = pg_schema(args.pg)
            try:
                results += bench_backend("PostgreSQL", url, workdir, args.size, args.reps, log, only)
            finally:
                drop_schema(args.pg, name)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    command = "python -m bench.run " + " ".join(a if a != args.pg else "$ROLLOUT_TEST_PG_URL" for a in (argv or sys.argv[1:]))
    doc = render(results, SIZES[args.size], machine(args.pg), started, elapsed, command.strip())
    if args.out != "-":
        out = Path(args.out)
        out.write_text(splice(out.read_text(encoding="utf-8") if out.exists() else None, doc), encoding="utf-8")
    print(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
