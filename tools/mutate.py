"""`make mutate`: mutation testing of the rule modules with mutmut 3, one module at a time.

Each module runs in its own scratch copy of the repository (build/mutate/<name>/) whose
pyproject.toml names only that module to mutate and only the test files that cover it, so a
module's run costs its own tests, not the suite's. mutmut then runs, per mutant, only the tests
that reached the mutated function. Scores go to build/mutate/<name>.json and a table on stdout
(paste it into docs/testing.md with the date). Not part of CI: a full run is about an hour on
2 cores.

    python tools/mutate.py                      # every module below
    python tools/mutate.py deadline reminder    # some of them
    python tools/mutate.py --max-children 2 gate
    python tools/mutate.py --baseline 6d8edde deadline   # the same module against an older tests/
    python tools/mutate.py plan --only "engine.plan.x_load_plan*"   # re-run some mutants of a copy

``--only`` keeps an existing scratch copy (its mutants and mutmut's test map: regenerating them
costs the module's whole run), copies this tree's tests/ and selection into it and re-runs only
the mutants named (mutmut names or globs); without a copy it makes one first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "build" / "mutate"
# docs/ too: tests read its examples (tests/engine/calendar/test_store.py loads docs/examples/calendar-2026.yaml)
COPY = ("engine", "notifications", "service", "web", "cli", "tests", "workflows", "mappings", "docs", "pyproject.toml")

# module → (file to mutate, the test files that cover its rules)
MODULES: dict[str, tuple[str, list[str]]] = {
    "gate": ("engine/gate.py", ["tests/engine/test_gate.py"]),
    "metrics": ("engine/metrics.py", ["tests/engine/test_metrics.py"]),
    "deadline": ("engine/deadline.py", ["tests/engine/test_deadline.py"]),
    "reminder": ("engine/reminder.py", ["tests/engine/test_reminder.py"]),
    "calendar": ("engine/calendar/workdays.py", ["tests/engine/calendar/test_workdays.py",
                                                 "tests/engine/calendar/test_store.py"]),
    # test_run_status holds the sweep's candidate rule (a stale "blocked" is not even measured)
    "runs": ("engine/runs.py", ["tests/engine/test_runs.py", "tests/engine/test_runs_concurrency.py",
                                "tests/engine/test_run_status.py", "tests/engine/test_runs_rules.py"]),
    "run_status": ("engine/run_status.py", ["tests/engine/test_run_status.py"]),
    "extension": ("engine/extension.py", ["tests/engine/test_extension.py"]),
    "plan": ("engine/plan.py", ["tests/engine/test_plan.py", "tests/engine/test_plan_rules.py",
                                "tests/engine/test_plan_load.py"]),
    # test_progress_history states the provenance record and --full, test_dry_run the preview and scope
    "progress": ("engine/imports/progress.py", ["tests/engine/imports/test_progress.py",
                                                "tests/engine/imports/test_progress_rules.py",
                                                "tests/engine/imports/test_progress_history.py",
                                                "tests/engine/imports/test_dry_run.py"]),
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
    "dispatcher": ("notifications/dispatcher.py", ["tests/notifications/test_dispatcher.py",
                                                   "tests/notifications/test_dispatcher_rules.py"]),
    "access": ("engine/access.py", ["tests/engine/test_access.py", "tests/web/test_access.py",
                                    "tests/web/test_facts_web.py", "tests/web/test_api.py"]),
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
               only: list[str] | None = None) -> dict[str, object]:
    target, tests = MODULES[name]
    label = f"{name}@{baseline}" if baseline else name
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
    env = {k: v for k, v in os.environ.items() if k != "ROLLOUT_TEST_PG_URL"}  # SQLite only: cheaper
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
    summary = {"module": target, "baseline": baseline, "tests": tests, "stats": stats, "survivors": survivors,
               "score": round(100 * killed / judged, 1) if judged else None, "total": total,
               "minutes": round((time.monotonic() - started) / 60, 1)}
    (SCRATCH / f"{label}.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], metavar="MODULE",
                        help=f"of: {', '.join(MODULES)} (default: all)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--baseline", metavar="REV", help="run against the tests/ of this git revision")
    parser.add_argument("--only", nargs="+", metavar="MUTANT",
                        help="re-run only these mutants (names or globs) in the module's existing scratch copy")
    args = parser.parse_args()
    if args.only and len(args.modules) != 1:
        parser.error("--only needs exactly one MODULE")
    print("| module | mutants | killed | survived | timeout | score | minutes |")
    print("|---|---|---|---|---|---|---|")
    for name in args.modules or list(MODULES):
        s = run_module(name, args.max_children, args.baseline, args.only)
        st: dict[str, int] = s["stats"]  # type: ignore[assignment]
        print(f"| {s['module']} | {s['total']} | {st.get('killed', 0)} | {st.get('survived', 0)} "
              f"| {st.get('timeout', 0)} | {s['score']} % | {s['minutes']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
