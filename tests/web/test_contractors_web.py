"""Contractor accounts (承训单位, seed 002) and the overview's 承训单位 table, on both databases.

A contractor account sees exactly the schools assigned to its contractor inside its region: the
others answer 404 on the school page and the API, and never appear in a list, an export, the API's
lists or the audit trail. The 承训单位 table's counts and rates equal what this test computes from
the teachers and facts it wrote itself.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine.accounts import UserError, add_user
from engine.db import sessions, transaction
from engine.facts import set_fact
from engine.imports.contractors import import_contractors
from engine.models import SchoolRun, Teacher
from tests.engine.builders import (
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    LATE,
    OTHER,
    OTHER_COUNTY,
    PILOT,
    PROVINCE,
    add_teachers,
)
from tests.web.conftest import PASSWORD, Site, csrf_of
from tests.web.test_accounts_web import temp_password

JIA, YI = "甲培训中心", "乙师范大学"
ASSIGN = {PILOT: JIA, EARLY[0]: JIA, LATE[0]: JIA, EARLY[1]: YI, OTHER: YI}  # LATE[1]: none
MINE = sorted(c for c, n in ASSIGN.items() if n == JIA)
THEIRS = sorted(c for c, n in ASSIGN.items() if n != JIA) + [LATE[1]]


@pytest.fixture
def contracted(site: Site, tmp_path: Path) -> Site:
    """The contractors assigned (the office's import), teachers and a fact, and the accounts."""
    path = tmp_path / "承训单位.csv"
    path.write_text("学校标识码,承训单位\n" + "".join(f"{c},{n}\n" for c, n in ASSIGN.items()), encoding="utf-8-sig")
    with transaction(sessions(site.engine)) as s:
        import_contractors(s, site.clock, path, actor="赵处长", role="province_office")
        add_teachers(s, EARLY[0], 4)  # 30 h online and practice, 3 points, evidence: pass
        add_teachers(s, PILOT, 3, online=0, practice=0, points=0, evidence=0, result=None)
        add_teachers(s, EARLY[1], 5, online=30, practice=10, evidence=0, result=None)
        add_teachers(s, OTHER, 2)
        set_fact(s, site.clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        add_user(s, site.clock, username="jia", role="contractor", scope=PROVINCE, password=PASSWORD, contractor=JIA)
        add_user(s, site.clock, username="yi_other", role="contractor", scope=OTHER_COUNTY, password=PASSWORD,
                 contractor=YI)
    return site


def _codes_in(text: str) -> set[str]:
    return {c for c in (*MINE, *THEIRS) if c in text}


def test_a_contractor_sees_exactly_its_schools(contracted: Site) -> None:
    client = contracted.as_user("jia")
    for code in MINE:
        assert client.get(f"/schools/{code}").status_code == 200, code
        assert client.get(f"/api/schools/{code}").status_code == 200, code
    for code in THEIRS:
        for path in (f"/schools/{code}", f"/api/schools/{code}", f"/api/schools/{code}/facts",
                     f"/audit?school={code}", f"/schools/{code}/teachers.xlsx"):
            assert client.get(path).status_code == 404, path
    for path in ("/", "/schools", "/overdue?state=", "/api/schools", "/api/overview", "/schools.csv", "/audit.csv",
                 "/api/audit", "/contractors.csv", "/plan/changes", "/extensions", "/imports"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert _codes_in(r.text) <= set(MINE), path
        assert YI not in r.text, path
    assert _codes_in(client.get("/schools").text) == set(MINE)
    assert {r["school_code"] for r in client.get("/api/schools").json()} == set(MINE)
    book = load_workbook(BytesIO(client.get("/schools.xlsx").content))
    cells = {str(c.value) for row in book.active.iter_rows() for c in row if c.value is not None}
    assert set(MINE) <= cells and not set(THEIRS) & cells
    audit = client.get("/audit.csv").text
    assert all(code in audit for code in MINE) and not _codes_in(audit) - set(MINE)  # its schools' assignments only
    assert client.get("/api/me").json()["contractor"] == JIA
    # its own 承训单位 row, nobody else's
    rows = client.get("/api/overview").json()["contractors"]
    assert [r["contractor"] for r in rows] == [JIA] and rows[0]["schools"] == 3


def test_a_contractor_account_is_confined_to_its_region_too(contracted: Site) -> None:
    client = contracted.as_user("yi_other")  # 乙 in 370302 only: not its 370323 school
    assert client.get(f"/schools/{OTHER}").status_code == 200
    assert client.get(f"/schools/{EARLY[1]}").status_code == 404
    assert {r["school_code"] for r in client.get("/api/schools").json()} == {OTHER}


def test_an_office_grants_contractor_accounts_for_contractors_in_its_region(contracted: Site) -> None:
    county = contracted.as_user("county")
    page = county.get("/accounts")
    r = county.post("/accounts", data={"csrf": csrf_of(page.text), "username": "jia2", "role": "contractor",
                                       "scope": COUNTY, "contractor": JIA})
    assert r.status_code == 200 and temp_password(r.text)
    other = contracted.as_user("other")  # county 370302: 甲 has no school there
    page = other.get("/accounts")
    r = other.post("/accounts", data={"csrf": csrf_of(page.text), "username": "jia3", "role": "contractor",
                                      "scope": OTHER_COUNTY, "contractor": JIA})
    assert r.status_code in (400, 403) and "没有分配学校" in r.text
    r = other.post("/accounts", data={"csrf": csrf_of(page.text), "username": "jia4", "role": "contractor",
                                      "scope": COUNTY, "contractor": JIA})
    assert r.status_code in (400, 403) and "不在您的管辖范围内" in r.text
    with transaction(sessions(contracted.engine)) as s:
        with pytest.raises(UserError):  # a contractor account names its contractor
            add_user(s, contracted.clock, username="nobody", role="contractor", scope=PROVINCE, password=PASSWORD)


def test_the_contractor_table_counts_and_rates_from_the_data(contracted: Site) -> None:
    prov = contracted.as_user("prov")
    with transaction(sessions(contracted.engine)) as s:
        assert {r.school_code: r.contractor for r in s.scalars(select(SchoolRun))} == {**ASSIGN, LATE[1]: None}
        teachers = list(s.scalars(select(Teacher)))
    expected: dict[str, dict[str, tuple[int, int]]] = {}
    for name in (JIA, YI):
        schools = [c for c, n in ASSIGN.items() if n == name]
        staff = [t for t in teachers if t.school_code in schools]
        expected[name] = {
            "participation": (sum(t.online_hours + t.practice_hours > 0 for t in staff), len(staff)),
            "online_hours_met": (sum(t.online_hours >= 25 for t in staff), len(staff)),
            "practice_hours_met": (sum(t.practice_hours >= 25 for t in staff), len(staff)),
            "plan_filed": (sum(c == EARLY[0] for c in schools), len(schools)),  # over all the plan's schools
        }
    rows = {r["contractor"]: r for r in prov.get("/api/overview").json()["contractors"]}
    assert set(rows) == {JIA, YI}
    for name, rates in expected.items():
        assert rows[name]["schools"] == sum(n == name for n in ASSIGN.values())
        for rid, (num, den) in rates.items():
            assert (rows[name]["rates"][rid]["numerator"], rows[name]["rates"][rid]["denominator"]) == (num, den), (name, rid)
    assert sorted(r["rank"] for r in rows.values()) == [1, 2]
    page = prov.get("/").text
    assert 'id="contractors"' in page and JIA in page and YI in page
    # the county's overview: only the contractors' schools in 370323
    county = contracted.as_user("county").get("/api/overview").json()["contractors"]
    assert {r["contractor"]: r["schools"] for r in county} == {JIA: 3, YI: 1}
    book = load_workbook(BytesIO(prov.get("/contractors.xlsx").content))
    values = [[c.value for c in row] for row in book.active.iter_rows()]
    assert any(JIA in row for row in values) and any(YI in row for row in values)


def test_a_bulk_add_creates_contractor_accounts(contracted: Site) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["用户名", "姓名", "角色", "范围", "承训单位"])
    sheet.append(["jia_c", "甲联络员", "承训单位", COUNTY, JIA])
    out = BytesIO()
    book.save(out)
    county = contracted.as_user("county")
    page = county.get("/accounts")
    r = county.post("/accounts/bulk", data={"csrf": csrf_of(page.text)},
                    files={"file": ("账号.xlsx", out.getvalue(), "application/octet-stream")})
    assert r.status_code == 200, r.text
    with transaction(sessions(contracted.engine)) as s:
        from engine.models import User
        user = s.scalars(select(User).where(User.username == "jia_c")).one()
        assert (user.role, user.scope_code, user.contractor) == ("contractor", COUNTY, JIA)


def test_a_contractor_sees_only_its_own_plan_of_a_school(contracted: Site, tmp_path: Path) -> None:
    """The same schools in a newer plan of another programme, with no contractor: not the contractor's."""
    from engine.plan import load_plan
    from tests.engine.builders import plan_data, write_plan

    with transaction(sessions(contracted.engine)) as s:
        load_plan(s, write_plan(tmp_path, plan_data(plan="other-2022", year=2022), "other.yaml"), contracted.clock)
    client = contracted.as_user("jia")
    assert client.get("/api/overview").json()["plan"] == "yiyuan-2021"  # its plan, not the newest
    assert client.get("/schools?plan=other-2022").status_code == 404
    assert client.get(f"/schools/{EARLY[0]}?plan=other-2022").status_code == 404
    assert client.get(f"/api/schools/{EARLY[0]}?plan=other-2022").status_code == 404
    got = client.get(f"/api/schools/{EARLY[0]}?plan=yiyuan-2021")
    assert got.status_code == 200 and got.json()["plan"] == "yiyuan-2021", got.text
    assert contracted.as_user("county").get(f"/api/schools/{EARLY[0]}?plan=other-2022").status_code == 200
    assert contracted.as_user("prov").get("/api/overview").json()["plan"] == "other-2022"  # offices: the newest


def test_a_contractor_uploads_facts_only_for_its_schools_and_sees_only_its_own_jobs(contracted: Site,
                                                                                   tmp_path: Path) -> None:
    from tests.web.test_uploads import job_id, upload

    contracted.app.state.rollout.uploads = tmp_path
    with transaction(sessions(contracted.engine)) as s:
        add_user(s, contracted.clock, username="yi", role="contractor", scope=PROVINCE, password=PASSWORD, contractor=YI)
    jia = contracted.as_user("jia")
    page = jia.get("/imports")
    assert page.status_code == 200 and "学校事实项" in page.text and "（平台导出）" not in page.text
    body = f"学校标识码,事实项,值\n{MINE[0]},plan_filed,1\n{THEIRS[0]},plan_filed,1\n".encode()
    job = job_id(upload(jia, body, "事实.csv", kind="facts"))
    shown = jia.get(f"/imports/{job}").text
    assert "未分配给承训单位" in shown  # the other contractor's school
    assert "不能记录事实项" in shown  # and plan_filed is the county's to record, not a contractor's
    yi = contracted.as_user("yi")  # same role, same scope, another contractor
    assert yi.get(f"/imports/{job}").status_code == 404 and "事实.csv" not in yi.get("/imports").text
