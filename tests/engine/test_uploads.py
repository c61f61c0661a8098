"""Upload rules: who may import which kind, who sees a job, and the latest import behind 数据截至."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.access import Forbidden, require_upload, upload_kinds
from engine.clock import FixedClock
from engine.errors import NotFound
from engine.models import User
from engine.uploads import (
    Counts,
    UploadRefused,
    check_committable,
    create_job,
    job_for,
    latest_import,
    record_commit,
    record_preview,
)
from tests.engine.builders import CITY, COUNTY, EARLY, OTHER_COUNTY, PROVINCE, seed


def user(s: Session, clock: FixedClock, name: str, role: str, scope: str) -> User:
    u = User(username=name, display_name=name, role=role, scope_code=scope, password_hash="!", active=True,
             failed_logins=0, created_at=clock.now())
    s.add(u)
    s.flush()
    return u


@pytest.mark.parametrize(("role", "allowed"), [("province_office", True), ("city_office", True), ("county_office", True),
                                               ("school_admin", False), ("supervisor", False)])
def test_who_may_upload(role: str, allowed: bool) -> None:
    u = User(username="u", display_name="u", role=role, scope_code=COUNTY)
    assert bool(upload_kinds(u)) is allowed
    if allowed:
        assert require_upload(u, "progress") == COUNTY  # confined to their own region
    else:
        with pytest.raises(Forbidden):
            require_upload(u, "progress")
    with pytest.raises(NotFound):
        require_upload(u, "../etc")


def _imported(s: Session, clock: FixedClock, who: User, name: str) -> int:
    job = create_job(s, clock, who, kind="progress", mapping="provincial-platform", filename=f"../x/{name}",
                     stored_name="s.csv", sha256="0" * 64, size=1)
    record_preview(job, clock, encoding="utf-8", columns=[], counts=Counts(1, 1, 0, 0), problems=[])
    record_commit(s, clock, who, job, Counts(1, 1, 0, 0))
    return job.id


def test_jobs_are_seen_by_their_office_only_and_feed_the_as_of(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with factory() as s, s.begin():
        _scenario(s, clock)


def _scenario(s: Session, clock: FixedClock) -> None:
    seed(s, clock)
    county = user(s, clock, "county", "county_office", COUNTY)
    other = user(s, clock, "other", "county_office", OTHER_COUNTY)
    prov = user(s, clock, "prov", "province_office", PROVINCE)
    city = user(s, clock, "city", "city_office", CITY)
    school = user(s, clock, "school", "school_admin", EARLY[0])
    assert latest_import(s, county) is None
    job = _imported(s, clock, county, "县.csv")
    assert job_for(s, county, job).filename == "县.csv"  # the last path part only
    with pytest.raises(NotFound):
        job_for(s, other, job)
    with pytest.raises(UploadRefused):
        check_committable(job_for(s, county, job))  # imported once, never twice
    assert latest_import(s, county).filename == "县.csv"  # type: ignore[union-attr]
    assert latest_import(s, school).filename == "县.csv"  # type: ignore[union-attr]
    assert latest_import(s, other) is None  # another county's file says nothing about this one
    assert latest_import(s, city) is None  # a county's file is not the whole city's
    clock.advance(timedelta(hours=1))
    _imported(s, clock, prov, "省.csv")
    for who in (county, other, city, school, prov):
        assert latest_import(s, who).filename == "省.csv"  # type: ignore[union-attr]
