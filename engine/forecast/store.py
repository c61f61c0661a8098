"""Each school run's forecast risk, stored (``engine.records.RunRisk``) so that a page can show it
without forecasting: written by the sweep (when it computes its 预警 warnings) and by
``rollout forecast --store``; read per run and counted per region for the dashboard.

A stored risk is *stale* — shown as such, never counted as current — when a progress import was
recorded after it was computed, when its run has moved on to another stage, or when it is older
than ``max_age_days`` (default 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session, aliased

from engine.forecast.school import SchoolForecast, Settings
from engine.models import ProgressImport, School, SchoolRun
from engine.records import RunRisk

MAX_AGE_DAYS = 7
CHUNK = 1_000


def _risk(f: SchoolForecast) -> float | None:
    known = [p for p in (f.p_miss_due, f.p_miss_final) if p is not None]
    return max(known) if known else None


def latest_import(session: Session, today: date) -> tuple[int | None, date | None]:
    """The progress import a forecast on ``today`` reads last: the latest as-of on or before today
    (of imports sharing it, the last recorded)."""
    row = session.execute(select(ProgressImport.id, ProgressImport.as_of).where(ProgressImport.as_of <= today)
                          .order_by(ProgressImport.as_of.desc(), ProgressImport.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else (None, None)


def store_risks(session: Session, plan_id: int, forecasts: Sequence[SchoolForecast], now: datetime, today: date,
                settings: Settings, source: str) -> int:
    """Replace the stored risk of every forecast run with this one; returns the rows written."""
    import_id, as_of = latest_import(session, today)
    rows: list[dict[str, Any]] = [{
        "run_id": f.run_id, "plan_id": plan_id, "computed_at": now, "as_of_import_id": import_id, "as_of": as_of,
        "stage": f.stage, "status": f.status, "due_date": f.due_date, "p_miss_due": f.p_miss_due,
        "p_miss_final": f.p_miss_final, "risk": _risk(f), "eta_p50": f.eta_p50, "eta_p90": f.eta_p90,
        "eta_beyond": f.eta_beyond, "teachers_at_risk": f.teachers_at_risk, "samples": settings.samples,
        "seed": settings.seed, "source": source,
    } for f in forecasts]
    ids = [r["run_id"] for r in rows]
    for i in range(0, len(ids), CHUNK):
        session.execute(delete(RunRisk).where(RunRisk.run_id.in_(ids[i:i + CHUNK])))
    for i in range(0, len(rows), 10 * CHUNK):
        session.execute(insert(RunRisk), rows[i:i + 10 * CHUNK])
    return len(rows)


@dataclass(frozen=True)
class StoredRisk:
    """One run's stored risk and whether it is still current (``stale_reason`` says why not)."""

    run_id: int
    computed_at: datetime
    as_of: date | None
    stage: str
    status: str
    p_miss_due: float | None
    p_miss_final: float | None
    risk: float | None
    eta_p50: date | None
    eta_p90: date | None
    eta_beyond: bool
    teachers_at_risk: int
    stale: bool
    stale_reason: str | None  # new_import | stage_changed | too_old


def fresh_since(session: Session, now: datetime, max_age_days: int = MAX_AGE_DAYS) -> datetime:
    """The earliest ``computed_at`` still current: the later of ``max_age_days`` ago and the last
    progress import recorded."""
    cutoff = now - timedelta(days=max_age_days)
    last = session.scalar(select(func.max(ProgressImport.at)))
    return max(cutoff, last) if last is not None else cutoff


def run_risks(session: Session, run_ids: Iterable[int], now: datetime,
              max_age_days: int = MAX_AGE_DAYS) -> dict[int, StoredRisk]:
    """The stored risk of each of ``run_ids`` that has one, staleness judged at ``now``."""
    ids = sorted(set(run_ids))
    cutoff = now - timedelta(days=max_age_days)
    last = session.scalar(select(func.max(ProgressImport.at)))
    out: dict[int, StoredRisk] = {}
    for i in range(0, len(ids), CHUNK):
        for r, state in session.execute(select(RunRisk, SchoolRun.state).join(SchoolRun, SchoolRun.id == RunRisk.run_id)
                                        .where(RunRisk.run_id.in_(ids[i:i + CHUNK]))):
            reason = ("new_import" if last is not None and r.computed_at < last else
                      "stage_changed" if r.stage != state else "too_old" if r.computed_at < cutoff else None)
            out[r.run_id] = StoredRisk(r.run_id, r.computed_at, r.as_of, r.stage, r.status, r.p_miss_due, r.p_miss_final,
                                       r.risk, r.eta_p50, r.eta_p90, r.eta_beyond, r.teachers_at_risk,
                                       reason is not None, reason)
    return out


def run_risk(session: Session, run_id: int, now: datetime, max_age_days: int = MAX_AGE_DAYS) -> StoredRisk | None:
    """One run's stored risk (None: never computed), for its school page."""
    return run_risks(session, [run_id], now, max_age_days).get(run_id)


def at_risk_counts(session: Session, plan_id: int, group_column: Any, *where: ColumnElement[bool],
                   threshold: float, now: datetime, max_age_days: int = MAX_AGE_DAYS,
                   stale: bool = False, few_schools: bool = False) -> dict[Any, int]:
    """Runs of the plan at risk (stored ``risk >= threshold``) per value of ``group_column`` (a
    ``School`` or ``SchoolRun`` column, e.g. ``School.county_code``), filtered by ``where``.

    Only current risks are counted; ``stale=True`` counts the at-risk ones that are stale instead
    (what a page shows beside the count, so an old warning is not taken for today's).

    ``few_schools``: ``where`` picks a city's or a county's schools. Then the count starts from
    them and asks each run for its risk; SQLite otherwise starts from every stored risk of the plan
    (a county's count took 22 ms of a province's 15,000 risks, 4 ms from its 327 schools — while
    for a whole province starting from the risks is the faster way, 32 ms against 162)."""
    if few_schools:
        risky = (select(RunRisk.run_id).where(RunRisk.run_id == SchoolRun.id, RunRisk.plan_id == plan_id,
                                              _at_risk(session, threshold, now, max_age_days, stale))).exists()
        return {group: int(n) for group, n in session.execute(
            select(group_column, func.count()).select_from(SchoolRun).join(School, School.code == SchoolRun.school_code)
            .where(SchoolRun.plan_id == plan_id, SchoolRun.withdrawn_at.is_(None), risky, *where).group_by(group_column))}
    q = (select(group_column, func.count())
         .select_from(RunRisk).join(SchoolRun, SchoolRun.id == RunRisk.run_id)
         .join(School, School.code == SchoolRun.school_code)
         .where(RunRisk.plan_id == plan_id, SchoolRun.withdrawn_at.is_(None),
                _at_risk(session, threshold, now, max_age_days, stale), *where)
         .group_by(group_column))
    return {group: int(n) for group, n in session.execute(q)}


def _at_risk(session: Session, threshold: float, now: datetime, max_age_days: int, stale: bool,
             run: Any = SchoolRun) -> ColumnElement[bool]:
    """A stored risk at or above ``threshold`` that is current (computed since the latest import,
    in the run's present stage, not too old) — or, with ``stale``, one that is not."""
    since = fresh_since(session, now, max_age_days)
    current = (RunRisk.computed_at >= since) & (RunRisk.stage == run.state)
    return (RunRisk.risk >= threshold) & (~current if stale else current)


def at_risk_clause(session: Session, plan_id: int, threshold: float, now: datetime,
                   max_age_days: int = MAX_AGE_DAYS) -> ColumnElement[bool]:
    """A WHERE clause over ``SchoolRun``: the runs ``at_risk_counts`` counts (the 有风险 list)."""
    run = aliased(SchoolRun)
    return SchoolRun.id.in_(select(RunRisk.run_id).join(run, run.id == RunRisk.run_id)
                            .where(RunRisk.plan_id == plan_id, _at_risk(session, threshold, now, max_age_days, False, run)))
