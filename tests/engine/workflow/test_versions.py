"""Workflow versions in the database: idempotent loading, and no rule changes under running schools."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.errors import NotFound, WorkflowVersionConflict
from engine.i18n import set_language
from engine.models import Batch, Plan, Region, School, SchoolRun, WorkflowVersion
from engine.workflow.loader import load_workflow_text
from engine.workflow.versions import (
    WORKFLOWS_DIR,
    find_workflow,
    register_workflow,
    shipped_workflow_paths,
    workflow_for_version,
)

TEXT = """\
workflow: tiny
version: "1"
title: {zh: 小, en: Tiny}
initial: work
roles:
  office: {zh: 项目办, en: Office}
metrics:
  filed: {title: {zh: 已备案, en: Filed}, kind: fact, fact: filed}
stages:
  - id: work
    title: {zh: 工作, en: Work}
    gates: [{id: filed, title: {zh: 已备案, en: Filed}, metric: filed, op: ">=", value: 1}]
  - {id: done, title: {zh: 完成, en: Done}, terminal: true}
transitions:
  - {trigger: advance, kind: advance, from: work, to: done, roles: [office], auto: true}
"""
CHANGED = TEXT.replace("value: 1}", "value: 2}")


def _register(factory: sessionmaker[Session], text: str, clock: FixedClock) -> WorkflowVersion:
    wf = load_workflow_text(text, "tiny.yaml")
    with factory.begin() as session:
        return register_workflow(session, wf, text, clock)


def _start_a_school(factory: sessionmaker[Session], version_id: int, clock: FixedClock) -> None:
    now = clock.now()
    with factory.begin() as session:
        session.add_all(
            [
                Region(code="370000", name="山东省", level="province"),
                Region(code="370300", name="淄博市", level="city", parent_code="370000"),
                Region(code="370323", name="沂源县", level="county", parent_code="370300"),
            ]
        )
        session.flush()
        session.add(School(code="3703230001", name="沂源县第一中学", county_code="370323", kind="middle"))
        plan = Plan(code="yy-2021", title="沂源 2021", workflow_version_id=version_id, year=2021, source="", loaded_at=now)
        session.add(plan)
        session.flush()
        batch = Batch(plan_id=plan.id, code="all", title="全县", start=date(2021, 12, 1))
        session.add(batch)
        session.flush()
        session.add(
            SchoolRun(
                plan_id=plan.id, school_code="3703230001", batch_id=batch.id, workflow_version_id=version_id,
                state="work", stage_entered_at=now, started_at=now, updated_at=now,
            )
        )


def test_register_inserts_a_version(factory: sessionmaker[Session], clock: FixedClock) -> None:
    row = _register(factory, TEXT, clock)
    with factory() as session:
        stored = session.get(WorkflowVersion, row.id)
        assert stored is not None
        assert (stored.workflow_id, stored.version, stored.source, stored.source_name) == ("tiny", "1", TEXT, "tiny.yaml")
        assert stored.content_hash == load_workflow_text(TEXT, "x").content_hash
        assert stored.loaded_at == clock.now()


def test_same_content_again_returns_the_existing_row(factory: sessionmaker[Session], clock: FixedClock) -> None:
    first = _register(factory, TEXT, clock)
    clock.advance(timedelta(days=1))
    # a comment and different layout are not a content change
    again = _register(factory, "# reformatted\n" + TEXT.replace("initial: work", "initial:   work"), clock)
    assert again.id == first.id
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(WorkflowVersion)) == 1
        assert session.get(WorkflowVersion, first.id).source == TEXT  # type: ignore[union-attr]


def test_changed_content_replaces_while_no_school_uses_it(factory: sessionmaker[Session], clock: FixedClock) -> None:
    first = _register(factory, TEXT, clock)
    with factory() as session:
        assert workflow_for_version(session, first.id).stage("work").gates[0].value == 1.0
    replaced = _register(factory, CHANGED, clock)
    assert replaced.id == first.id
    with factory() as session:
        assert session.get(WorkflowVersion, first.id).source == CHANGED  # type: ignore[union-attr]
        # the cache never serves the old rules of a replaced version
        assert workflow_for_version(session, first.id).stage("work").gates[0].value == 2.0


def test_changed_content_is_refused_once_a_school_runs_on_it(factory: sessionmaker[Session], clock: FixedClock) -> None:
    set_language("en")
    first = _register(factory, TEXT, clock)
    _start_a_school(factory, first.id, clock)
    with pytest.raises(WorkflowVersionConflict, match="already used by 1 school"):
        _register(factory, CHANGED, clock)
    with factory() as session:
        assert session.get(WorkflowVersion, first.id).source == TEXT  # type: ignore[union-attr]
    # the same content is still fine, and a new version is the way to change rules
    assert _register(factory, TEXT, clock).id == first.id
    v2 = _register(factory, CHANGED.replace('version: "1"', 'version: "2"'), clock)
    assert v2.id != first.id


def test_conflict_message_is_chinese_by_default(factory: sessionmaker[Session], clock: FixedClock) -> None:
    first = _register(factory, TEXT, clock)
    _start_a_school(factory, first.id, clock)
    with pytest.raises(WorkflowVersionConflict, match="已有 1 所学校按此版本运行"):
        _register(factory, CHANGED, clock)


def test_a_workflow_that_does_not_match_its_text_is_a_bug(factory: sessionmaker[Session], clock: FixedClock) -> None:
    wf = load_workflow_text(TEXT, "tiny.yaml")
    with factory.begin() as session, pytest.raises(ValueError, match="does not match"):
        register_workflow(session, wf, CHANGED, clock)


def test_find_workflow_latest_or_named_version(factory: sessionmaker[Session], clock: FixedClock) -> None:
    v1 = _register(factory, TEXT, clock)
    clock.advance(timedelta(hours=1))
    v2 = _register(factory, CHANGED.replace('version: "1"', 'version: "2"'), clock)
    with factory() as session:
        assert find_workflow(session, "tiny").id == v2.id
        assert find_workflow(session, "tiny", "1").id == v1.id
        with pytest.raises(NotFound):
            find_workflow(session, "tiny", "3")
        with pytest.raises(NotFound):
            find_workflow(session, "other")
        with pytest.raises(NotFound):
            workflow_for_version(session, 9999)


def test_workflow_for_version_parses_once(factory: sessionmaker[Session], clock: FixedClock) -> None:
    row = _register(factory, TEXT, clock)
    with factory() as session:
        first = workflow_for_version(session, row.id)
    with factory() as session:
        assert workflow_for_version(session, row.id) is first
    assert first.key == "tiny@1"


def test_shipped_workflow_paths() -> None:
    paths = shipped_workflow_paths()
    assert WORKFLOWS_DIR.name == "workflows"
    assert {p.name for p in paths} >= {"whole-school-2.0.yaml", "henan-contractor-2021.yaml"}
    assert paths == sorted(paths)
