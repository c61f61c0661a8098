"""Render benchmark results as the Markdown table in docs/benchmarks.md."""

from __future__ import annotations

import json
import statistics
from datetime import datetime
from typing import Any

from bench.generate import Size


def _median(r: dict[str, Any]) -> float:
    return float(statistics.median(r["times"]))


def _naive_seconds(row: dict[str, Any]) -> float | None:
    """The naive run did ``measured_rows`` of the engine's rows: extrapolate linearly."""
    naive = row.get("naive")
    if not naive:
        return None
    return _median(naive) * row["engine"]["rows"] / max(1, naive.get("measured_rows", naive["rows"]))


def render(results: list[dict[str, Any]], size: Size, machine: dict[str, str], started: datetime,
           elapsed: float, command: str) -> str:
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `{command}` in {elapsed:.0f} s.",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory']} RAM, Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, PostgreSQL {machine['postgresql']}.",
        "",
        f"Size `{size.name}`: {size.schools:,} schools, {size.teachers:,} teachers, XLSX {size.xlsx_rows:,} rows, "
        f"{size.events:,} audit events seeded (plus the plan's own).",
        "",
        "| backend | operation | rows | median s | runs (s) | rows/s | peak RSS MB | naive s (extrap.) | engine ÷ floor | naive ÷ engine | target |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in results:
        if row["op"] == "explain":
            continue
        e = row["engine"]
        med = _median(e)
        naive = _naive_seconds(row)
        floor = _median(row["floor"]) if row.get("floor") else None
        label = row["label"]
        if "p99_ms" in e:
            label += (f" ({e['clients']} clients in {e.get('processes', 1)} processes, {e['schools']} schools × "
                      f"{e['rows'] // e['schools']} attempts: p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms; "
                      + (f"one client alone: p50 {e['solo_p50_ms']} ms, p99 {e['solo_p99_ms']} ms; " if "solo_p50_ms" in e else "")
                      + f"won once {e['won_once']}, doubled {e['doubled']}, lost {e['lost']}, audit events {e['audit_events']})")
        lines.append(" | ".join([
            f"| {row['backend']}", label, f"{e['rows']:,}", f"{med:.3f}",
            ", ".join(f"{t:.3f}" for t in e["times"]), f"{e['rows'] / med:,.0f}" if med else "-", _peak(e),
            f"{naive:.2f}" if naive is not None else "-",
            f"{med / floor:.1f}×" if floor else "-",
            f"{naive / med:.0f}×" if naive is not None and med else "-",
            f"{row.get('target', '')} |",
        ]))
    for row in (r for r in results if r["op"] == "explain"):
        lines += ["", f"Query plans of the hot queries on {row['backend']} (`bench/explain.py`):", ""]
        for name, plan in row["plans"].items():
            lines += [f"- {name}:", "", "  ```", *(f"  {step}" for step in plan), "  ```"]
    lines += ["", "<details><summary>Raw results</summary>", "", "```"]
    lines += [json.dumps(r, ensure_ascii=False) for r in results if r["op"] != "explain"]
    lines += ["```", "", "</details>"]
    return "\n".join(lines)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def splice(existing: str | None, generated: str) -> str:
    """Replace only the generated block, so the hand-written analysis around it survives a re-run."""
    block = f"{BEGIN}\n{generated}\n{END}"
    if existing and BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return block + "\n"


def _peak(e: dict[str, Any]) -> str:
    """The process's peak RSS; for a page, also the request's own (bench.web_ops.reset_peak)."""
    own = e.get("request_peak_mb")
    return f"{e['peak_mb']:.0f}" + (f" (request {own:.0f})" if own is not None else "")
