"""Per-county tallies of a plan's runs and rates, kept current with the stored status.

A province's overview must count 50,000 schools by state, stage and batch and sum six rates over a
million teachers in 150 ms (issue 10). Counting them on every read took 2–3 s on SQLite, most of it
the teacher rates. So, as the stored status does for one run's verdict (engine/run_status.py),
the counts are kept per county, rewritten in the same transaction as whatever changed them, for the
counties touched: ``retally`` is called by ``run_status.refresh``, which every change of a run goes
through. A county holds a few hundred schools, so rewriting its rows is a few milliseconds.

What depends on today (overdue, due soon, not started) is not stored: a tally row keeps the due
date and start, and ``run_state`` decides when read, by the rule every list uses.

``tally_drift`` recounts from the runs and names every county whose rows differ: ``audit verify``'s
state check and the stateful tests use it, so a change path that forgets to re-tally shows up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, true
from sqlalchemy.orm import Session

from engine.models import Plan, School, SchoolRun
from engine.rates import RateValue, rate_values
from engine.reads import remembered
from engine.records import RateTally, RunTally
from engine.workflow.versions import workflow_for_version

WHOLE_PLAN_AT = 20
OVER = ("teachers", "schools")
RunKey = tuple[str | None, str | None, str, int, str, bool, datetime, date | None]
RateKey = tuple[str | None, str | None, str, str]


def _run_counts(session: Session, plan_id: int, counties: Iterable[str] | None) -> dict[RunKey, int]:
    cols = (School.province_code, School.city_code, School.county_code, SchoolRun.batch_id, SchoolRun.state,
            SchoolRun.blocked, SchoolRun.started_at, SchoolRun.due_date)
    q = (select(*cols, func.count()).join(School, School.code == SchoolRun.school_code)
         .where(SchoolRun.plan_id == plan_id, SchoolRun.withdrawn_at.is_(None)).group_by(*cols))
    if counties is not None:
        q = q.where(School.county_code.in_(list(counties)))
    return {(p, c, k, b, s, bool(bl), st, d): int(n) for p, c, k, b, s, bl, st, d, n in session.execute(q)}


def _rate_counts(session: Session, plan_id: int, counties: Iterable[str] | None,
                 over: tuple[str, ...] = OVER, per_school: Mapping[str, Sequence[int]] | None = None,
                 ) -> dict[RateKey, tuple[int, int]]:
    plan = session.get(Plan, plan_id)
    assert plan is not None
    wf = workflow_for_version(session, plan.workflow_version_id)
    if not wf.rates:
        return {}
    where: list[ColumnElement[bool]] = [] if counties is None else [School.county_code.in_(list(counties))]
    got = rate_values(session, wf, plan_id, School.county_code, *where, scan_all=counties is None, over=over,
                      per_school=per_school)
    parents = dict(((k, (p, c)) for k, p, c in session.execute(
        select(School.county_code, School.province_code, School.city_code).distinct()
        .where(School.county_code.in_(list(got))))))
    out: dict[RateKey, tuple[int, int]] = {}
    for county, values in got.items():
        province, city = parents.get(county, (None, None))
        for rate_id, v in values.items():
            out[(province, city, county, rate_id)] = (v.numerator, v.denominator)
    return out


def retally(session: Session, plan_id: int, counties: Iterable[str] | None = None, *, teachers: bool = True,
            per_school: Mapping[str, Sequence[int]] | None = None) -> None:
    """Rewrite the tallies of ``counties`` (every county of the plan when None) from the runs.

    ``teachers=False`` keeps the rates over teachers: a stage, fact or due date changed, no teacher
    row and no run came or went. Counting a county's 6,500 teachers is most of a re-tally's cost.
    ``per_school``: the plan's teacher-rate counts of every school with a run, counted already
    (``rate_values``)."""
    chosen = None if counties is None else sorted(set(counties))
    if chosen is not None and not chosen:
        return
    plan = session.get(Plan, plan_id)
    assert plan is not None
    wf = workflow_for_version(session, plan.workflow_version_id)
    over = OVER if teachers else ("schools",)
    kept = [r.id for r in wf.rates.values() if r.over not in over]
    for table in (RunTally, RateTally):
        gone = delete(table).where(table.plan_id == plan_id)
        if chosen is not None:
            gone = gone.where(table.county_code.in_(chosen))
        if table is RateTally and kept:
            gone = gone.where(RateTally.rate_id.not_in(kept))
        session.execute(gone)
    runs = [{"plan_id": plan_id, "province_code": p, "city_code": c, "county_code": k, "batch_id": b, "stage": s,
             "blocked": bl, "started_at": st, "due_date": d, "runs": n}
            for (p, c, k, b, s, bl, st, d), n in _run_counts(session, plan_id, chosen).items()]
    rates = [{"plan_id": plan_id, "province_code": p, "city_code": c, "county_code": k, "rate_id": r,
              "numerator": num, "denominator": den}
             for (p, c, k, r), (num, den) in _rate_counts(session, plan_id, chosen, over, per_school).items()]
    if runs:
        session.execute(insert(RunTally), runs)
    if rates:
        session.execute(insert(RateTally), rates)


def retally_where(session: Session, where: ColumnElement[bool], *, teachers: bool = True,
                  per_school: Mapping[int, Mapping[str, Sequence[int]]] | None = None) -> None:
    """Re-tally the counties of every run matching ``where`` (withdrawn ones too: they leave).
    ``per_school``: plan id → that plan's ``retally`` counts, where the caller has them."""
    touched: dict[int, set[str]] = defaultdict(set)
    for plan_id, county in session.execute(
            select(SchoolRun.plan_id, School.county_code).distinct()
            .join(School, School.code == SchoolRun.school_code).where(where)):
        touched[plan_id].add(county)
    for plan_id, counties in touched.items():
        # Many counties (an import, a plan load): one pass over the plan beats an IN list.
        whole = len(counties) > WHOLE_PLAN_AT and len(counties) >= (session.scalar(
            select(func.count(func.distinct(School.county_code))).join(SchoolRun, SchoolRun.school_code == School.code)
            .where(SchoolRun.plan_id == plan_id)) or 0)
        retally(session, plan_id, None if whole else counties, teachers=teachers,
                per_school=(per_school or {}).get(plan_id))


def retally_all(conn: Connection) -> None:
    """Every plan's tallies, inside a Core connection's transaction (the imports work on those)."""
    session = Session(bind=conn)  # joins the transaction; never commits it
    try:
        for plan_id in session.scalars(select(Plan.id)):
            retally(session, plan_id)
        session.flush()
    finally:
        session.close()


def ensure_tallied(session: Session, plan_id: int) -> None:
    """A plan with runs but no tally rows (a database upgraded to 0011) is tallied once."""
    asked: list[bool] = remembered(session, ("tallied", plan_id), list)
    if asked:  # a read-only request asked already: tallied then
        return
    asked.append(True)
    if session.scalar(select(RunTally.id).where(RunTally.plan_id == plan_id).limit(1)) is not None:
        return
    if session.scalar(select(SchoolRun.id).where(SchoolRun.plan_id == plan_id).limit(1)) is None:
        return
    retally(session, plan_id)


def _in_region(table: Any, level: str | None, region: str | None) -> ColumnElement[bool]:
    if region is None or level is None:
        return true()
    column = {"province": table.province_code, "city": table.city_code, "county": table.county_code}[level]
    return column == region


def run_tallies(session: Session, plan_id: int, *, level: str | None = None,
                region: str | None = None) -> list[Any]:
    """The plan's tally rows within ``region`` (of ``level``), as plain rows (no ORM objects:
    a province's 2,000 rows are read on every overview)."""
    ensure_tallied(session, plan_id)
    cols = [c for c in RunTally.__table__.columns if c.name not in ("id", "plan_id")]
    # The overview's table and its charts read the same rows: once per read-only request.
    return remembered(session, ("run_tallies", plan_id, level, region), lambda: list(
        session.execute(select(*cols).where(RunTally.plan_id == plan_id, _in_region(RunTally, level, region)))))


def rate_tallies(session: Session, plan_id: int, group_level: str, *, level: str | None = None,
                 region: str | None = None) -> dict[str, dict[str, RateValue]]:
    """Group (the code of ``group_level``: city or county) → rate id → counts, within ``region``."""
    ensure_tallied(session, plan_id)
    group = {"province": RateTally.province_code, "city": RateTally.city_code, "county": RateTally.county_code}[group_level]
    out: dict[str, dict[str, RateValue]] = {}
    for code, rate_id, num, den in session.execute(
            select(group, RateTally.rate_id, func.sum(RateTally.numerator), func.sum(RateTally.denominator))
            .where(RateTally.plan_id == plan_id, _in_region(RateTally, level, region))
            .group_by(group, RateTally.rate_id)):
        out.setdefault(code or "?", {})[rate_id] = RateValue(int(num or 0), int(den or 0))
    return out


def plan_in_region(session: Session, plan_id: Any, level: str, region: str) -> ColumnElement[bool]:
    """True for a plan with schools in ``region``: the plan picker's test from the tallies (an
    EXISTS over a province's runs took 80–100 ms on PostgreSQL). Plans not tallied yet (a database
    upgraded to 0011) are tallied first, or the picker would never show them."""
    untallied = select(RunTally.id).where(RunTally.plan_id == Plan.id).exists()
    for pid in session.scalars(select(Plan.id).where(~untallied)):
        ensure_tallied(session, pid)
    return select(RunTally.id).where(RunTally.plan_id == plan_id, _in_region(RunTally, level, region)).exists()


def tally_drift(session: Session, plan_id: int) -> list[str]:
    """Counties whose stored tallies differ from a recount of the runs (empty: all agree). A plan
    never tallied yet (upgraded, not read since) has nothing to differ: its first read tallies it."""
    if session.scalar(select(RunTally.id).where(RunTally.plan_id == plan_id).limit(1)) is None:
        return []
    stored_runs: dict[RunKey, int] = defaultdict(int)
    for t in session.scalars(select(RunTally).where(RunTally.plan_id == plan_id)):
        stored_runs[(t.province_code, t.city_code, t.county_code, t.batch_id, t.stage, t.blocked,
                     t.started_at, t.due_date)] += t.runs
    stored_rates = {(t.province_code, t.city_code, t.county_code, t.rate_id): (t.numerator, t.denominator)
                    for t in session.scalars(select(RateTally).where(RateTally.plan_id == plan_id))}
    live_runs, live_rates = _run_counts(session, plan_id, None), _rate_counts(session, plan_id, None)
    differ = {k[2] for k in set(stored_runs) | set(live_runs) if stored_runs.get(k) != live_runs.get(k)}
    differ |= {k[2] for k in set(stored_rates) | set(live_rates) if stored_rates.get(k) != live_rates.get(k)}
    return sorted(differ)

