"""`make mutate`: mutation testing of the rule modules with mutmut 3, each module on its own.

Each module runs in its own scratch copy of the repository (build/mutate/<name>/) whose
pyproject.toml names only that module to mutate and only the test files that cover it, so a
module's run costs its own tests, not the suite's. mutmut then runs, per mutant, only the tests
that reached the mutated function. With ``--max-children N`` and several modules, N modules run
side by side with one child each, the longest first (``COST``). Scores go to
build/mutate/<name>.json and a table on stdout (paste it into docs/testing.md with the date). Not
part of CI: a full run should fit in an hour on 2 cores (docs/testing.md has the measured time).

    python tools/mutate.py                      # every module below
    python tools/mutate.py deadline reminder    # some of them
    python tools/mutate.py --max-children 2 gate
    python tools/mutate.py --baseline 6d8edde deadline   # the same module against an older tests/
    python tools/mutate.py plan --only "engine.plan.x_load_plan*"   # re-run some mutants of a copy
    ROLLOUT_TEST_PG_URL=... python tools/mutate.py --pg dispatcher --only "notifications.dispatcher.x__claim*"

``--only`` keeps an existing scratch copy (its mutants and mutmut's test map: regenerating them
costs the module's whole run), copies this tree's tests/ and selection into it and re-runs only
the mutants named (mutmut names or globs); without a copy it makes one first. Its row and json
then count only the mutants named: mutmut keeps no earlier verdicts, so a module's score comes
from a whole run.

Runs are SQLite only (``ROLLOUT_TEST_PG_URL`` is dropped from the mutants' environment: a
migration per PostgreSQL test would cost hours). ``--pg`` keeps it, so the tests marked
``postgres`` run too: meant with ``--only`` for a module's PostgreSQL-only mutants (a branch the
SQLite run cannot reach), judged by the tool instead of by hand. Give it a database of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "build" / "mutate"
# docs/ too: tests read its examples (tests/engine/calendar/test_store.py loads docs/examples/calendar-2026.yaml)
COPY = ("engine", "notifications", "service", "web", "cli", "tests", "workflows", "mappings", "docs", "pyproject.toml")

# module → (file to mutate, the test files that cover its rules)
MODULES: dict[str, tuple[str, list[str]]] = {
    "gate": ("engine/gate.py", ["tests/engine/test_gate.py"]),
    # the wait rule of an early fact (_counts) is stated in test_facts, the per-request memo in test_reads
    "metrics": ("engine/metrics.py", ["tests/engine/test_metrics.py", "tests/engine/test_metrics_rules.py",
                                      "tests/engine/test_facts.py", "tests/engine/test_reads.py",
                                      "tests/engine/test_tally.py"]),
    # run_stage_due (issue 14: an extension's cover, the final deadline's binding) is reached through
    # the stored status (test_run_status) and the Henan year (test_henan_year), not test_deadline
    # test_deadline_rules states what an extension that covers the rest does to the later stages
    "deadline": ("engine/deadline.py", ["tests/engine/test_deadline.py", "tests/engine/test_deadline_rules.py",
                                        "tests/engine/test_run_status.py", "tests/workflows/test_henan_year.py"]),
    "reminder": ("engine/reminder.py", ["tests/engine/test_reminder.py"]),
    "calendar": ("engine/calendar/workdays.py", ["tests/engine/calendar/test_workdays.py",
                                                 "tests/engine/calendar/test_store.py"]),
    # test_run_status holds the sweep's candidate rule (a stale "blocked" is not even measured)
    "runs": ("engine/runs.py", ["tests/engine/test_runs.py", "tests/engine/test_runs_concurrency.py",
                                "tests/engine/test_run_status.py", "tests/engine/test_runs_rules.py"]),
    # test_run_status_versions: a refresh over a plan on two workflow versions (each its own aggregation)
    # test_run_status_rules: ensure_current derives each plan's own runs, once per read-only request
    "run_status": ("engine/run_status.py", ["tests/engine/test_run_status.py",
                                            "tests/engine/test_run_status_versions.py",
                                            "tests/engine/test_run_status_rules.py",
                                            "tests/engine/test_tally.py",  # the import's one-pass refresh
                                            # the import's history is written beside its refresh
                                            "tests/engine/imports/test_progress_history.py"]),
    "extension": ("engine/extension.py", ["tests/engine/test_extension.py"]),
    "plan": ("engine/plan.py", ["tests/engine/test_plan.py", "tests/engine/test_plan_rules.py",
                                "tests/engine/test_plan_load.py"]),
    # test_progress_history states the provenance record and --full, test_dry_run the preview and scope
    "progress": ("engine/imports/progress.py", ["tests/engine/imports/test_progress.py",
                                                "tests/engine/imports/test_progress_rules.py",
                                                "tests/engine/imports/test_progress_history.py",
                                                "tests/engine/imports/test_dry_run.py",
                                                "tests/engine/imports/test_split.py"]),
    # what each progress import changed (issue 11): the merge of the changed rows, the history, provenance, --full
    "history": ("engine/imports/history.py", ["tests/engine/imports/test_progress_history.py",
                                              "tests/engine/imports/test_progress.py",
                                              "tests/engine/imports/test_split.py"]),
    # the forecast's window read and its base (issue 11 speed): test_sums states both reads against the
    # exports' figures at every window start; the PostgreSQL shape (window._as_rows) needs --pg
    "window": ("engine/forecast/window.py", ["tests/engine/forecast/test_sums.py"]),
    "base": ("engine/forecast/base.py", ["tests/engine/forecast/test_base.py", "tests/engine/forecast/test_sums.py"]),
    # the province read's sums and which teachers it reads (every teacher when many schools are
    # forecast, the others dropped); the cursor it streams through (chunks, or a server-side one)
    "sums": ("engine/forecast/sums.py", ["tests/engine/forecast/test_sums.py", "tests/engine/forecast/test_data.py"]),
    # the forecast's inputs: which runs are open (a parked one is not), each run's made when read
    "data": ("engine/forecast/data.py", ["tests/engine/forecast/test_data.py", "tests/engine/forecast/test_api.py",
                                         "tests/engine/forecast/test_sums.py"]),
    "cursor": ("engine/forecast/cursor.py", ["tests/engine/forecast/test_cursor.py", "tests/engine/forecast/test_sums.py"]),
    # a large file checked in parts (issue 11 speed): test_split states that the parts' read is the one-process read's
    "split": ("engine/imports/split.py", ["tests/engine/imports/test_split.py"]),
    # the progress export's cells (split out of imports/progress.py on 2026-12-03)
    "cells": ("engine/imports/cells.py", ["tests/engine/imports/test_progress.py",
                                          "tests/engine/imports/test_progress_rules.py",
                                          "tests/engine/imports/test_hostile_files.py",
                                          # the yes/no and school-code cells of the other files
                                          "tests/engine/imports/test_schools.py",
                                          "tests/engine/imports/test_regions.py",
                                          "tests/engine/imports/test_direct_counties_import.py",
                                          "tests/engine/imports/test_contractors.py",
                                          "tests/engine/test_entries.py",
                                          "tests/engine/test_contractor_entries.py"]),
    # the sweep's early warnings, reroutes and its report are stated in test_warnings, test_direct_counties,
    # the bulletin's contractor ranking (seed 002 (九)) in test_contractor_bulletin
    "sweep": ("service/sweep.py", ["tests/service/test_sweep.py", "tests/service/test_sweep_rules.py",
                                   "tests/service/test_warnings.py", "tests/service/test_direct_counties.py",
                                   "tests/service/test_contractor_bulletin.py"]),
    "chain": ("engine/audit/chain.py", ["tests/engine/audit/test_chain.py"]),
    "verify": ("engine/audit/verify.py", ["tests/engine/audit/test_verify.py", "tests/engine/audit/test_verify_scope.py",
                                          "tests/engine/audit/test_verify_encoding.py"]),
    "checkpoint": ("engine/audit/checkpoint.py", ["tests/engine/audit/test_checkpoint.py",
                                                  "tests/engine/audit/test_checkpoint_rules.py",
                                                  "tests/engine/audit/test_checkpoint_report.py"]),
    # test_dispatcher_postgres (three processes on the SKIP LOCKED claim) is skipped without --pg
    "dispatcher": ("notifications/dispatcher.py", ["tests/notifications/test_dispatcher.py",
                                                   "tests/notifications/test_dispatcher_rules.py",
                                                   "tests/notifications/test_dispatcher_postgres.py"]),
    # test_access_rules: a contractor account's scope (seed 002 二), which the others do not reach
    "access": ("engine/access.py", ["tests/engine/test_access.py", "tests/engine/test_access_rules.py",
                                    "tests/web/test_access.py", "tests/web/test_facts_web.py", "tests/web/test_api.py"]),
}


def _config(target: str, tests: list[str]) -> str:
    return "\n".join([
        "",
        "[tool.mutmut]",
        f'source_paths = ["{target.split("/")[0]}"]',
        f'only_mutate = ["{target}"]',
        'also_copy = ["engine", "notifications", "service", "web", "cli", "workflows", "mappings", "docs"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]',
        "",
    ])


def run_module(name: str, max_children: int, baseline: str | None = None,
               only: list[str] | None = None, pg: bool = False) -> dict[str, object]:
    target, tests = MODULES[name]
    # --pg gets its own copy (<name>-pg): mutmut maps tests to functions once per copy, and a
    # SQLite copy's map never saw a PostgreSQL test run
    label = (f"{name}@{baseline}" if baseline else name) + ("-pg" if pg else "")
    work = SCRATCH / label
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    if only and (work / "mutants").is_dir():  # keep the mutants; bring in today's tests and selection
        shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore, dirs_exist_ok=True)
        shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for item in COPY:
            src = ROOT / item
            if src.is_dir():
                shutil.copytree(src, work / item, ignore=ignore)
            else:
                shutil.copy(src, work / item)
    if baseline:  # the score "before": the same code against the tests as they were at ``baseline``
        shutil.rmtree(work / "tests")
        archive = subprocess.run(["git", "archive", baseline, "tests"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
        tests = [t for t in tests if (work / t).exists()]
    with (work / "pyproject.toml").open("a", encoding="utf-8") as out:
        out.write(_config(target, tests))
    # SQLite only (cheaper) unless --pg: then the postgres-marked tests run against ROLLOUT_TEST_PG_URL
    env = {k: v for k, v in os.environ.items() if pg or k != "ROLLOUT_TEST_PG_URL"}
    mutmut = [sys.executable, "-m", "mutmut"]
    started = time.monotonic()
    with (SCRATCH / f"{label}.log").open("w", encoding="utf-8") as log:
        subprocess.run([*mutmut, "run", "--max-children", str(max_children), *(only or [])], cwd=work, env=env,
                       stdout=log, stderr=subprocess.STDOUT, check=False)
        subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=False)
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    results = subprocess.run([*mutmut, "results"], cwd=work, env=env, capture_output=True, text=True, check=False)
    survivors = [line.split(":")[0].strip() for line in results.stdout.splitlines()
                 if line.strip().endswith(("survived", "no tests"))]
    killed, total = int(stats.get("killed", 0)), int(stats.get("total", 0))
    judged = killed + int(stats.get("survived", 0)) + int(stats.get("no_tests", 0))
    summary = {"module": target, "baseline": baseline, "pg": pg, "tests": tests, "stats": stats, "survivors": survivors,
               "score": round(100 * killed / judged, 1) if judged else None, "total": total,
               "minutes": round((time.monotonic() - started) / 60, 1)}
    (SCRATCH / f"{label}.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    print(_row(summary), flush=True)
    return summary


# Minutes each module took alone (docs/testing.md), only to start the longest first: with two
# modules side by side, each on one child, a core is never idle while a module generates its
# mutants, maps its tests and runs them clean (a minute or two each, single-threaded).
COST = {"plan": 38, "run_status": 40, "runs": 35, "progress": 27, "metrics": 17, "sweep": 14,
        "dispatcher": 13, "verify": 13, "checkpoint": 8, "access": 5, "extension": 3, "gate": 2,
        "chain": 2, "deadline": 12, "reminder": 1, "calendar": 1, "history": 3}


def _row(s: dict[str, object]) -> str:
    st: dict[str, int] = s["stats"]  # type: ignore[assignment]
    return (f"| {s['module']} | {s['total']} | {st.get('killed', 0)} | {st.get('survived', 0)} "
            f"| {st.get('timeout', 0)} | {s['score']} % | {s['minutes']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], metavar="MODULE",
                        help=f"of: {', '.join(MODULES)} (default: all)")
    parser.add_argument("--max-children", type=int, default=2,
                        help="processes in all: with several modules, that many modules at once, one child each")
    parser.add_argument("--baseline", metavar="REV", help="run against the tests/ of this git revision")
    parser.add_argument("--only", nargs="+", metavar="MUTANT",
                        help="re-run only these mutants (names or globs) in the module's existing scratch copy")
    parser.add_argument("--pg", action="store_true",
                        help="keep ROLLOUT_TEST_PG_URL for the mutants (PostgreSQL tests run too); meant with --only")
    args = parser.parse_args()
    if args.only and len(args.modules) != 1:
        parser.error("--only needs exactly one MODULE")
    if args.pg and not os.environ.get("ROLLOUT_TEST_PG_URL"):
        parser.error("--pg needs ROLLOUT_TEST_PG_URL (a PostgreSQL database of its own)")
    names = sorted(args.modules or list(MODULES), key=lambda n: -COST.get(n, 0))
    jobs = max(1, min(args.max_children, len(names)))
    children = max(1, args.max_children // jobs)
    started = time.monotonic()
    header = "| module | mutants | killed | survived | timeout | score | minutes |\n|---|---|---|---|---|---|---|"
    print(header, flush=True)
    with ThreadPoolExecutor(jobs) as pool:  # each module is its own mutmut process
        done = list(pool.map(lambda n: run_module(n, children, args.baseline, args.only, args.pg), names))
    by_name = dict(zip(names, done, strict=True))
    print(f"\n{header}")
    for name in [n for n in MODULES if n in by_name]:
        print(_row(by_name[name]))
    print(f"\n{len(names)} modules, {jobs} at a time with {children} child(ren) each: "
          f"{(time.monotonic() - started) / 60:.1f} minutes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
