"""Facts and extensions as uploads (issue 14 item 9): the same preview → confirm flow as progress,
through the bulk-entry importers, each row checked by the workflow's own rules as the uploader."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.db import sessions, transaction
from engine.models import AuditEvent, RunDeadline, SchoolFact
from tests.engine.builders import EARLY, OTHER
from tests.web.conftest import Site
from tests.web.test_uploads import confirm, count, folder, job_id, upload  # noqa: F401 (the fixture)


def _events(site: Site, trigger: str) -> int:
    with transaction(sessions(site.engine)) as s:
        return len(s.scalars(select(AuditEvent.id).where(AuditEvent.trigger == trigger)).all())


@pytest.mark.usefixtures("folder")
def test_a_facts_file_previews_without_writing_then_records_each_row(site: Site) -> None:
    county = site.as_user("county")
    assert "学校事实项" in county.get("/imports").text
    body = "学校标识码,事实项,值\n" + "".join(f"{c},plan_filed,1\n" for c in EARLY)
    job = job_id(upload(county, body.encode("utf-8"), "事实.csv", kind="facts"))
    page = county.get(f"/imports/{job}")
    assert "可以导入" in page.text and 'id="confirm"' in page.text
    assert count(site, SchoolFact) == 0 and _events(site, "fact:plan_filed") == 0  # the dry run rolled back
    assert confirm(county, job).status_code == 303
    with transaction(sessions(site.engine)) as s:
        facts = {(f.name, f.value) for f in s.scalars(select(SchoolFact))}
    assert facts == {("plan_filed", 1.0)} and count(site, SchoolFact) == 2
    assert _events(site, "fact:plan_filed") == 2  # each row its own audit event
    again = job_id(upload(county, ("学校标识码,事实项,值\n" + f"{EARLY[0]},plan_filed,1\n").encode(), "再次.csv", kind="facts"))
    assert confirm(county, again).status_code == 303
    assert _events(site, "fact:plan_filed") == 2  # idempotent: nothing changed


@pytest.mark.usefixtures("folder")
def test_rows_outside_the_region_or_the_role_are_problems_and_nothing_is_written(site: Site) -> None:
    county = site.as_user("county")
    body = f"学校标识码,事实项,值\n{EARLY[0]},plan_filed,1\n{OTHER},plan_filed,1\n"
    job = job_id(upload(county, body.encode(), "越界.csv", kind="facts"))
    page = county.get(f"/imports/{job}")
    assert "不在您的管辖范围" in page.text and 'id="confirm"' not in page.text
    assert count(site, SchoolFact) == 0
    school = site.as_user("school")  # a school admin has no 导入数据 page at all
    assert school.get("/imports").status_code in (403, 404)


@pytest.mark.usefixtures("folder")
def test_an_extensions_file_requests_and_approves(site: Site) -> None:
    county = site.as_user("county")
    body = ("学校标识码,操作,新截止日期,理由\n"
            f"{EARLY[0]},申请,2021-10-31,疫情停课\n{EARLY[0]},批准,,情况属实\n")
    job = job_id(upload(county, body.encode(), "延期.csv", kind="extensions"))
    assert "可以导入" in county.get(f"/imports/{job}").text
    assert _events(site, "extension_request") == 0 and count(site, RunDeadline) == 0
    assert confirm(county, job).status_code == 303
    assert (_events(site, "extension_request"), _events(site, "extend")) == (1, 1)
    with transaction(sessions(site.engine)) as s:
        assert [str(d.due) for d in s.scalars(select(RunDeadline))] == ["2021-10-31"]
