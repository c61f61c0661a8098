"""Per-school metric values, computed in SQL.

A workflow's metrics are data (``engine.workflow.model.Metric``); this module turns each into an
aggregate over teacher records (one GROUP BY for all schools at once) or a lookup of a school
fact. Values from the workflow file are bound as parameters: nothing from a file is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, any_, bindparam, case, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from engine.models import School, SchoolFact, SchoolRun, Teacher
from engine.reads import remembered
from engine.workflow.model import Condition, Metric, Workflow

SCAN_ALL_MIN = 1000  # below this many schools the index lookups are cheaper than any full pass

_COLUMNS: dict[str, Any] = {
    "online_hours": Teacher.online_hours,
    "practice_hours": Teacher.practice_hours,
    "total_hours": Teacher.online_hours + Teacher.practice_hours,
    "points_count": Teacher.points_count,
    "evidence_count": Teacher.evidence_count,
    "evidence_result": Teacher.evidence_result,
    "role": Teacher.role,
}


def _condition(cond: Condition) -> ColumnElement[bool]:
    column = _COLUMNS[cond.field]
    if cond.op == "in":
        assert isinstance(cond.value, tuple)
        return column.in_(cond.value)
    value = cond.value
    return {
        ">=": column >= value,
        ">": column > value,
        "<=": column <= value,
        "<": column < value,
        "==": column == value,
        "!=": column != value,
    }[cond.op]


def condition_clause(cond: Condition) -> ColumnElement[bool]:
    """A teacher condition as SQL over ``teacher`` (engine.rates counts with the same tests)."""
    return _condition(cond)


def _matching(metric: Metric) -> ColumnElement[Any]:
    if not metric.where:
        return func.count()
    # COUNT ... FILTER, not SUM(CASE ...): a count is 0, never NULL, over a school with no match.
    return func.count().filter(and_(*(_condition(c) for c in metric.where)))


def teacher_metric_query(wf: Workflow, runs: Select, *, scan_all: bool = False,
                         extra: Sequence[Any] = ()) -> tuple[Select, list[Metric]]:
    """One aggregate query: a row per school with teacher count and one column per teacher metric.

    ``runs`` selects ``SchoolRun.id, SchoolRun.school_code`` for the runs of interest.
    ``scan_all`` aggregates every teacher in one pass, for a selection that covers much of the
    province: SQLite otherwise fetches each teacher row through the school index, a random read per
    teacher (2.5 s for 1,000,000 teachers; reading the table in order and sorting the groups is
    2–3× faster), and PostgreSQL probes the index once per school (``_scan_all``). Grouping by an
    expression is what stops SQLite from walking the index. ``extra``:
    more per-school aggregates over the same teachers, after the metrics' columns.
    """
    metrics = [m for m in wf.metrics.values() if m.kind != "fact"]
    key: Any = func.coalesce(Teacher.school_code, "") if scan_all else Teacher.school_code
    # read by position: (school, teachers, one count per metric, the extra columns)
    cols = [key, func.count(), *(_matching(m) for m in metrics), *extra]
    # Teachers a full export no longer lists have left the school: "every teacher" means those
    # still there (issue 11, ``progress import --full``).
    query = select(*cols).where(Teacher.left_on.is_(None)).group_by(key)
    if not scan_all:
        sub = runs.subquery()
        query = query.where(Teacher.school_code.in_(select(sub.c.school_code)))
    return query, metrics


def metric_values(
    session: Session, wf: Workflow, runs: Select, *, extra: Sequence[Any] = (),
    counted: dict[str, tuple[int, ...]] | None = None,
) -> dict[int, dict[str, float | None]]:
    """Run id → metric id → value, for every run selected by ``runs`` (id, school_code).

    A share over zero teachers is ``None`` (no data), not 0 % and not 100 %. ``extra`` columns
    (per-school aggregates over the present teachers: ``engine.rates.teacher_rate_columns``) are
    counted in the same pass into ``counted`` (school → their values), for each school the pass
    reads (every school with a present teacher, when ``runs`` selects them all: the stored status's
    refresh after an import, engine/run_status.py).
    """
    run_rows = session.execute(runs).all()
    school_of = {r[0]: r[1] for r in run_rows}
    values: dict[int, dict[str, float | None]] = {
        run_id: {m: None for m in wf.metrics} for run_id in school_of
    }
    if not school_of:
        return values

    query, metrics = teacher_metric_query(wf, runs, scan_all=_scan_all(session, len(set(school_of.values()))),
                                          extra=extra)
    per_school: dict[str, dict[str, float | None]] = {}
    tail = 2 + len(metrics)
    for row in session.execute(query):
        if counted is not None:
            counted[row[0]] = tuple(int(v or 0) for v in row[tail:])
        n = row[1]
        got: dict[str, float | None] = {}
        for i, m in enumerate(metrics):
            count = row[2 + i]
            if m.kind == "share_of_teachers":
                got[m.id] = count / n  # a school has a row only when it has teachers: n >= 1
            else:
                got[m.id] = float(count)
        per_school[row[0]] = got
    count_metrics = [m.id for m in metrics if m.kind == "count_of_teachers"]
    for run_id, school in school_of.items():
        if school in per_school:
            values[run_id].update(per_school[school])
        else:  # no teacher records: counts are 0, shares stay None
            values[run_id].update({m: 0.0 for m in count_metrics})

    facts: dict[str, list[str]] = {}
    for m in wf.metrics.values():
        if m.kind == "fact" and m.fact:
            facts.setdefault(m.fact, []).append(m.id)
    if facts:
        sub = runs.subquery()
        fact_rows = session.execute(
            select(SchoolFact.run_id, SchoolFact.name, SchoolFact.value, SchoolFact.recorded_at, SchoolRun.state,
                   SchoolRun.previous_state, SchoolRun.stage_entered_at)
            .join(SchoolRun, SchoolRun.id == SchoolFact.run_id)
            .where(SchoolFact.run_id.in_(select(sub.c.id)), SchoolFact.name.in_(list(facts)))
        )
        waits = {name: stage for name in facts if wf.early_rule(name) == "wait" and (stage := wf.fact_stage(name))}
        for run_id, name, value, recorded_at, state, previous, entered in fact_rows:
            stage = waits.get(name)
            if stage is not None and not _counts(wf, stage, recorded_at, state, previous, entered):
                continue  # recorded before the fact's stage: kept, not counted (before_stage: wait)
            for metric_id in facts[name]:
                values[run_id][metric_id] = value
    return values


def _counts(wf: Workflow, stage: str, recorded_at: Any, state: str, previous: str | None, entered: Any) -> bool:
    """A ``wait`` fact counts once the school has reached its stage and it was recorded there."""
    if wf.before(state, previous, stage):
        return False
    return not (state == stage and recorded_at < entered)


def _scan_all(session: Session, schools: int) -> bool:
    """A selection of at least a quarter of all schools is cheaper as one full pass. On PostgreSQL
    too: a province's metric values took 0.81 s as one scan and hash aggregate against 1.26 s by
    the school index in one process (0.93 s in three server processes, 2.1 CPU seconds)."""
    if schools < SCAN_ALL_MIN:
        return False
    return bool(schools * 4 >= session.execute(select(func.count()).select_from(School)).scalar_one())


def runs_by_id(run_ids: Iterable[int], *, postgres: bool = False) -> Select:
    """The runs ``run_ids`` (id, school_code), as ``metric_values`` takes them. On PostgreSQL the
    ids are one array parameter: an IN list binds every id, and ``metric_values`` uses the
    selection three times, so a province's 50,000 runs were 150,000 parameters rendered, sent
    and parsed (metric values of a province: 2.6 s against 1.3 s with the array)."""
    ids = list(run_ids)
    if postgres:
        return select(SchoolRun.id, SchoolRun.school_code).where(
            SchoolRun.id == any_(bindparam("run_ids", ids, type_=ARRAY(Integer))))
    return select(SchoolRun.id, SchoolRun.school_code).where(SchoolRun.id.in_(ids))


def values_of_runs(session: Session, wf: Workflow, run_ids: Iterable[int]) -> dict[int, dict[str, float | None]]:
    """``metric_values`` of the runs ``run_ids``, once per read-only request (``engine.reads``): the
    school page's gates and its forecast read the same run's values."""
    ids = tuple(run_ids)
    postgres = session.get_bind().dialect.name == "postgresql"
    # wf is kept in the memo beside its values: the key's id(wf) cannot be reused while it lives.
    return remembered(session, ("metric_values", id(wf), ids),
                      lambda: (wf, metric_values(session, wf, runs_by_id(ids, postgres=postgres))))[1]


def values_for_run(session: Session, wf: Workflow, run: SchoolRun) -> Mapping[str, float | None]:
    return metric_values(session, wf, runs_by_id([run.id]))[run.id]


def teacher_summary(session: Session, school_code: str) -> dict[str, int]:
    """Counts a school page shows: teachers, and how many lack online/practice hours or evidence."""
    row = session.execute(
        select(
            func.count().label("teachers"),
            func.count().filter(Teacher.online_hours < 25).label("online_below_25h"),
            func.count().filter(Teacher.practice_hours < 25).label("practice_below_25h"),
            func.count().filter(Teacher.points_count < 3).label("points_below_3"),
            func.count().filter(Teacher.evidence_count < Teacher.points_count).label("evidence_missing"),
        ).where(Teacher.school_code == school_code, Teacher.left_on.is_(None))
    ).one()
    return dict(row._mapping)


def teachers_behind(session: Session, wf: Workflow, stage_id: str, school_code: str) -> list[dict[str, Any]]:
    """The school's teachers who hold back a gate of ``stage_id``: for each gate over a teacher
    share, the teachers its metric does not count (a null result counts as not met). Each row
    names the teacher (platform id, name), their progress, and the gates they hold back, so the
    school knows whom to chase — "实践不足25学时 15" says how many, not who. A teacher who has left
    (``left_on``) is not counted by the gates, so they are not listed either."""
    gates = [(g, wf.metrics[g.metric]) for g in wf.stage(stage_id).gates
             if wf.metrics[g.metric].kind == "share_of_teachers"]
    if not gates:
        return []
    # held back unless every condition holds (a NULL figure holds none: it is not met)
    flags = [case((and_(*(_condition(c) for c in m.where)), False), else_=True) for _g, m in gates]
    q = (select(Teacher.platform_id, Teacher.name, Teacher.online_hours, Teacher.practice_hours, Teacher.points,
                Teacher.points_count, Teacher.evidence_count, Teacher.evidence_result, *flags)
         .where(Teacher.school_code == school_code, Teacher.left_on.is_(None)).order_by(Teacher.platform_id))
    out: list[dict[str, Any]] = []
    for row in session.execute(q):
        held = [g.id for i, (g, _m) in enumerate(gates) if row[8 + i]]
        if held:
            out.append({"platform_id": row[0], "name": row[1], "online_hours": row[2], "practice_hours": row[3],
                        "points": row[4], "points_count": row[5], "evidence_count": row[6],
                        "evidence_result": row[7], "gates": held})
    return out
