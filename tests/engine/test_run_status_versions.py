"""The stored status of a plan whose schools follow two workflow versions (docs/changing-mid-year.md):
a refresh over the whole plan measures and judges every school by the version it is on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.models import Plan, SchoolRun
from engine.run_status import refresh
from tests.engine.builders import (
    EARLY,
    OTHER,
)
from tests.engine.version_builders import studying_on_two_versions


def test_a_refresh_over_two_workflow_versions_judges_each_school_by_its_own(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """EARLY's schools (22 and 18 hours) and OTHER (22 hours) in online study; OTHER's county moved to
    version 2, where 20 hours are enough, EARLY's stay on version 1 (25 hours). One refresh of the
    whole plan passes OTHER and holds EARLY's, on each school's own measured hours."""
    with transaction(factory) as s:
        studying_on_two_versions(s, clock, tmp_path)
    with transaction(factory) as s:
        versions = {r.school_code: r.workflow_version_id for r in s.scalars(select(SchoolRun))}
        assert versions[OTHER] != versions[EARLY[0]]
        expected = {r.school_code: (r.blocked, r.failing) for r in s.scalars(select(SchoolRun))}
        assert expected[OTHER] == (False, None)
        for code in EARLY:  # none of their teachers has 25 hours
            assert (expected[code][0], [(g["gate"], g["actual"]) for g in expected[code][1]]) == (True, [("online_25h", 0.0)])
        s.execute(update(SchoolRun).values(blocked=False, failing=None))
        refresh(s, SchoolRun.plan_id == s.scalars(select(Plan.id)).one())
        s.expire_all()
        assert {r.school_code: (r.blocked, r.failing) for r in s.scalars(select(SchoolRun))} == expected
