"""A read-only request looks each thing up once (engine/reads.py); any other session as before."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from engine.metrics import values_of_runs
from engine.models import School
from engine.reads import remember_reads
from engine.runs import find_run
from engine.status import school_detail
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import EARLY, PILOT


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _lookups(s: Session) -> None:
    run = find_run(s, PILOT)
    workflow_for_version(s, run.workflow_version_id)
    gc.collect()  # nothing holds the school now: a weak identity map has forgotten it
    s.get(School, PILOT)


def test_a_marked_session_asks_the_database_once_per_lookup(plan: sessionmaker[Session]) -> None:
    with plan() as s:
        remember_reads(s)
        _lookups(s)
        with statements(s) as seen:
            _lookups(s)
            _lookups(s)
        assert seen == []


def test_an_unmarked_session_asks_every_time(plan: sessionmaker[Session]) -> None:
    """Commands and POSTs may change what they read: they are never answered from a memo."""
    with plan() as s:
        _lookups(s)
        with statements(s) as seen:
            _lookups(s)
        assert len(seen) >= 3  # the run, its plan, the workflow's hash (and the school, once forgotten)


def test_remembered_values_are_the_values(plan: sessionmaker[Session]) -> None:
    """The memo changes how often, not what: the same gates with and without it."""
    with plan() as plain, plan() as marked:
        remember_reads(marked)
        ids = [find_run(plain, code).id for code in (PILOT, *EARLY)]
        wf = workflow_for_version(plain, find_run(plain, PILOT).workflow_version_id)
        assert values_of_runs(marked, wf, ids) == values_of_runs(plain, wf, ids)
        assert values_of_runs(marked, wf, ids) is values_of_runs(marked, wf, ids)
        assert values_of_runs(marked, wf, ids[:1]) == {ids[0]: values_of_runs(plain, wf, ids)[ids[0]]}


def test_a_school_page_reads_its_school_plan_and_run_once(plan: sessionmaker[Session], clock: object) -> None:
    """The school detail reads the run's gates and deadlines; a second look costs no lookup again."""
    with plan() as s:
        remember_reads(s)
        first = school_detail(s, clock, PILOT, None)  # type: ignore[arg-type]
        with statements(s) as seen:
            again = school_detail(s, clock, PILOT, None)  # type: ignore[arg-type]
        assert again == first
        lookups = [q for q in seen if q.lstrip().startswith("SELECT") and (" FROM school WHERE" in q or " FROM \"plan\"" in q
                                                                        or "FROM workflow_version WHERE" in q)]
        assert lookups == []
