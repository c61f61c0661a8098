"""Named rates (参训率, 学时达标率, 合格率 …, and Henan's 选送率/报到率/结业率) computed per region
or per school, from the workflow file's ``rates:`` section.

Offices publish rates per city and county and rank by them (DOMAIN.md: "the province periodically
publishes rates … per city/county"); which rates, and what counts, differ per programme, so they
are data: a rate is numerator / denominator over the teachers or the schools of a plan in scope,
each side a list of conditions that must all hold (teacher fields; or, over schools, recorded facts
and current stages). One aggregate query per kind (teachers, schools) gives every rate for every
group at once; values from the file are bound as parameters, never evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select, true
from sqlalchemy.orm import Session

from engine.metrics import condition_clause
from engine.models import School, SchoolFact, SchoolRun, Teacher
from engine.workflow.model import Condition, Rate, SchoolCondition, Workflow


@dataclass(frozen=True)
class RateValue:
    """A rate's counts; ``value`` is None when nothing is in the denominator (no data, not 0 %)."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def as_dict(self) -> dict[str, Any]:
        return {"numerator": self.numerator, "denominator": self.denominator, "value": self.value}


def _school_condition(cond: SchoolCondition) -> ColumnElement[bool]:
    if cond.stages:
        return SchoolRun.state.in_(cond.stages)
    value = SchoolFact.value
    test = {">=": value >= cond.value, ">": value > cond.value, "<=": value <= cond.value,
            "<": value < cond.value, "==": value == cond.value, "!=": value != cond.value}[cond.op]
    # A fact never recorded fails the test (as an unrecorded fact fails a gate).
    return exists(select(SchoolFact.run_id).where(SchoolFact.run_id == SchoolRun.id,
                                                  SchoolFact.name == cond.fact, test))


def _clause(conds: Sequence[Condition | SchoolCondition]) -> ColumnElement[bool]:
    parts = [condition_clause(c) if isinstance(c, Condition) else _school_condition(c) for c in conds]
    return and_(*parts) if parts else true()


def _columns(rates: list[Rate]) -> list[Any]:
    cols: list[Any] = []
    for r in rates:
        den = _clause(r.denominator)
        # COUNT … FILTER, not SUM(CASE …): 0 where nothing matches, and cheaper per row on SQLite.
        cols += [func.count().filter(and_(den, _clause(r.numerator))), func.count().filter(den)]
    return cols


def teacher_rate_columns(wf: Workflow) -> list[Any]:
    """Per school, a numerator and a denominator count for each rate over teachers (in
    ``wf.rates`` order), as aggregates over ``teacher`` grouped by school: what ``rate_values``
    sums per group, for a pass over the teachers that counts something else too (the stored
    status's metric pass, engine/run_status.py: one pass over a million teachers, not two)."""
    return _columns([r for r in wf.rates.values() if r.over == "teachers"])


def rate_values(session: Session, wf: Workflow, plan_id: int, group: Any, *where: ColumnElement[bool],
                scan_all: bool = False, over: tuple[str, ...] = ("teachers", "schools"),
                per_school: Mapping[str, Sequence[int]] | None = None) -> dict[str, dict[str, RateValue]]:
    """Group key → rate id → counts, for every rate of ``wf`` over the plan's schools matching
    ``where`` (e.g. the user's scope), grouped by ``group`` (a ``School`` column: city, county or
    the school's own code). A group with no teachers gets 0/0 for the teacher rates.

    Teachers are counted per school first, then the schools summed per group. ``scan_all`` (a
    province's overview) reads the whole teacher table in one pass instead of through the school
    index, as ``engine.metrics`` does: 3× faster on SQLite when most schools are in scope.
    ``over`` limits the rates to those over teachers or over schools (the tallies re-count only the
    school rates when a stage or fact changed). ``per_school``: the ``teacher_rate_columns`` of
    every school in scope, counted already; the teachers are then not read again.

    A teacher a full export no longer lists has left the school (``progress import --full``): not
    counted, as the gates do not count them — 参训率 is over the school's teachers."""
    out: dict[str, dict[str, RateValue]] = {}
    runs = (select(group.label("g"), School.code.label("code"), SchoolRun.id.label("run_id"))
            .select_from(SchoolRun).join(School, School.code == SchoolRun.school_code)
            .where(SchoolRun.plan_id == plan_id, SchoolRun.withdrawn_at.is_(None), *where))
    teacher_rates = [r for r in wf.rates.values() if r.over == "teachers" and "teachers" in over]
    if teacher_rates and per_school is not None:
        sums: dict[Any, list[int]] = {}
        for g, code, _run in session.execute(runs):
            counts = per_school.get(code)
            if counts is not None:  # a school without teachers: none of its counts (as the join below)
                acc = sums.setdefault(g, [0] * len(counts))
                for i, c in enumerate(counts):
                    acc[i] += c
        for g, counts in sums.items():
            out.setdefault(g, {}).update({r.id: RateValue(counts[2 * i], counts[2 * i + 1])
                                          for i, r in enumerate(teacher_rates)})
    elif teacher_rates:
        key: Any = func.coalesce(Teacher.school_code, "") if scan_all else Teacher.school_code
        per_school_q = (select(key.label("code"), *[c.label(f"c{i}") for i, c in enumerate(_columns(teacher_rates))])
                        .where(Teacher.left_on.is_(None)))
        if not scan_all:
            scope = runs.subquery()
            per_school_q = per_school_q.where(Teacher.school_code.in_(select(scope.c.code)))
        per = per_school_q.group_by(key).subquery()
        sub = runs.subquery()
        n = 2 * len(teacher_rates)
        q = (select(sub.c.g, *[func.sum(per.c[f"c{i}"]) for i in range(n)])
             .join(per, per.c.code == sub.c.code).group_by(sub.c.g))
        _collect(session, q, teacher_rates, out)
    school_rates = [r for r in wf.rates.values() if r.over == "schools" and "schools" in over]
    if school_rates:
        q = (select(group, *_columns(school_rates)).select_from(SchoolRun)
             .join(School, School.code == SchoolRun.school_code)
             .where(SchoolRun.plan_id == plan_id, SchoolRun.withdrawn_at.is_(None), *where).group_by(group))
        _collect(session, q, school_rates, out)
    empty = RateValue(0, 0)
    for got in out.values():
        for rid, r in wf.rates.items():
            if r.over in over:
                got.setdefault(rid, empty)
    return out


def _collect(session: Session, query: Any, rates: list[Rate], out: dict[str, dict[str, RateValue]]) -> None:
    for row in session.execute(query):
        got = out.setdefault(row[0], {})
        for i, r in enumerate(rates):
            got[r.id] = RateValue(int(row[1 + 2 * i] or 0), int(row[2 + 2 * i] or 0))


def total(values: Sequence[dict[str, RateValue]], rate_id: str) -> RateValue:
    """The rate over several groups: numerators and denominators summed (never an average of rates)."""
    return RateValue(sum(v[rate_id].numerator for v in values if rate_id in v),
                     sum(v[rate_id].denominator for v in values if rate_id in v))
