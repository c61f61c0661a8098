"""A small Henan year (seed 002) end to end, on both databases: the shipped contractor workflow and
the example plan, facts and extensions entered from files, the daily sweep at checkpoints, and the
bulletins — every alert per level and every bulletin number checked against what this test computes
from its own data (its own working-day count, the seed's deadlines, the workflow's remind rule).

What it pins down (issue 14): deliverables are due 30 days after training ends, not at 06-30 (bug 3);
an extended school that finishes training is due by its own rule within the cap, not overdue (bug
2); the directly administered counties are peers of the cities and an escalation with no city
contact goes to the province (item 5); bulletins go only to offices with schools in the plan (10).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.bulletin import ranked_regions
from engine.clock import FixedClock
from engine.contractors import contractor_ranking
from engine.db import transaction
from engine.entries import import_extensions, import_facts
from engine.imports import import_progress
from engine.imports.contractors import import_contractors
from engine.models import Contact, NoticeItem, Notification, Region, SchoolRun
from engine.plan import find_plan
from engine.projection import verify_state
from engine.runs import Actor
from engine.status import status_table
from service.sweep import run_bulletins, run_sweep
from tests.conftest import SHANGHAI
from tests.engine.henan import (
    DENGZHOU,
    GONGYI,
    JIYUAN,
    NANYANG,
    PROVINCE,
    SCHOOLS,
    XIXIA,
    ZHENGZHOU,
    ZHONGYUAN,
    henan,
    write_csv,
)

OFFICE = Actor("王玥", "province_office")
CONTRACTOR = Actor("承训单位甲", "contractor")
ANYANG = "410500"  # waits for the next tender (002 二): an office with no school in this plan
UNIT = {ZHONGYUAN: ZHENGZHOU, GONGYI: GONGYI, XIXIA: NANYANG, DENGZHOU: DENGZHOU, JIYUAN: JIYUAN}  # city level
CITY_CONTACTS = {ZHENGZHOU, GONGYI}  # 南阳、邓州、济源 have none: their city escalations go to the province
# 002 附件2: two of the eight contractors; 甲 trains 郑州、巩义、西峡, 乙 邓州、济源
CONTRACTED = {c: "甲师范大学" if c[:6] in (ZHONGYUAN, GONGYI, XIXIA) else "乙教育研究院" for c in SCHOOLS}
BEFORE, STEPS, REPEAT = (7, 1), ((0, "school"), (3, "city"), (10, "province")), 7  # the workflow's remind


def workdays_after(start: date, n: int) -> date:
    """Mon–Fri counting (no official calendar is imported here, so the engine counts provisionally)."""
    day = start
    while n:
        day += timedelta(days=1)
        n -= day.weekday() < 5
    return day


class Model:
    """Where each school is and when its stage is due, kept by the test from its own actions."""

    def __init__(self) -> None:
        start = date(2021, 2, 1)
        self.stage = dict.fromkeys(SCHOOLS, "assigned")
        self.due = dict.fromkeys(SCHOOLS, workdays_after(start, 20))  # assigned: 20 working days
        self.seen: set[tuple[object, ...]] = set()

    def move(self, schools: list[str], stage: str, due: date | None) -> None:
        for s in schools:
            self.stage[s] = stage
            self.due[s] = due  # type: ignore[assignment]

    def new_items(self, today: date) -> Counter[str]:
        """Recipient level → items a sweep today must add (each reminder/alert round once)."""
        now: set[tuple[object, ...]] = set()
        for s in SCHOOLS:
            due = self.due[s]
            if due is None:
                continue
            if today <= due:
                passed = [b for b in BEFORE if (due - today).days <= b]
                if passed:
                    now.add((s, self.stage[s], due, "remind", min(passed)))
                continue
            late = (today - due).days
            now |= {(s, self.stage[s], due, level, (late - after) // REPEAT) for after, level in STEPS if late >= after}
        fresh, self.seen = now - self.seen, self.seen | now
        got: Counter[str] = Counter()
        for s, _, _, kind, _ in fresh:
            level = "school" if kind in ("remind", "school") else kind
            if level == "city" and UNIT[s[:6]] not in CITY_CONTACTS:
                level = "province"  # no city contact: passed up, never dropped
            got[level] += 1
        return got


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI)


def _sweep(factory: sessionmaker[Session], clock: FixedClock, day: date, model: Model) -> None:
    clock.set(_at(day))
    with transaction(factory) as s:
        before = {i for i, in s.execute(select(NoticeItem.id))}
        run_sweep(s, clock)
        rows = s.execute(select(NoticeItem.id, Contact.level).join(Notification, Notification.id == NoticeItem.notification_id)
                         .join(Contact, Contact.id == Notification.contact_id)).all()
    got = Counter(level for i, level in rows if i not in before)
    assert got == model.new_items(day), day


def _facts(factory: sessionmaker[Session], clock: FixedClock, tmp: Path, day: date, rows: list[list[str]],
           actor: Actor = OFFICE) -> None:
    clock.set(_at(day))
    with transaction(factory) as s:
        import_facts(s, clock, write_csv(tmp / f"f{day}.csv", ["学校标识码", "事实项", "值"], rows), actor=actor)


def _states(factory: sessionmaker[Session]) -> dict[str, str]:
    with transaction(factory) as s:
        return {c: st for c, st in s.execute(select(SchoolRun.school_code, SchoolRun.state))}


def test_a_henan_year(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    clock.set(_at(date(2021, 2, 1)))
    with transaction(factory) as s:
        henan(s, clock, tmp_path)
        s.add(Region(code=ANYANG, name="安阳市", level="city", parent_code=PROVINCE))
        s.flush()
        offices = [(PROVINCE, "province", "省执行办"), (ZHENGZHOU, "city", "郑州市教育局"), (GONGYI, "city", "巩义市教育局"),
                   (ANYANG, "city", "安阳市教育局")] + [(c, "school", f"校{c[-6:]}") for c in SCHOOLS]
        s.add_all(Contact(scope_code=code, level=level, name=name, channel="file", address=str(tmp_path / "out"),
                          lang="zh", active=True) for code, level, name in offices)
    # 3 teachers and one management-team member per school (002: 48,890 teachers, 1,260 members)
    people = [[f"T{c}{i}", f"教师{i}", c, "0", "0", "", "", "", "管理团队" if i == 0 else "教师"]
              for c in SCHOOLS for i in range(4)]
    import_progress(factory().get_bind(), write_csv(tmp_path / "学员.csv", [
        "教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点", "提交作品数", "测评结果", "人员类型"], people))
    model = Model()
    # 002 二: the tender's contractors and their schools (附件2 承担单位分配表)
    with transaction(factory) as s:
        import_contractors(s, clock, write_csv(tmp_path / "分配.csv", ["学校标识码", "承训单位"],
                                               [[c, CONTRACTED[c]] for c in SCHOOLS]), actor="王玥", role="province_office")

    # 02-10: the tender's result and the cities' selection, from one file; all move to registration
    _facts(factory, clock, tmp_path, date(2021, 2, 10),
           [[c, f, "1"] for c in SCHOOLS for f in ("contractor_assigned", "selection_rate")])
    model.move(SCHOOLS, "registration", workdays_after(date(2021, 2, 10), 10))
    _sweep(factory, clock, date(2021, 2, 10), model)
    assert set(_states(factory).values()) == {"registration"}

    # 02-22: the contractor reports registration for all but 西峡's two schools
    xixia = [c for c in SCHOOLS if c.startswith(XIXIA)]
    others = [c for c in SCHOOLS if c not in xixia]
    _facts(factory, clock, tmp_path, date(2021, 2, 22), [[c, "registration_rate", "1"] for c in others], CONTRACTOR)
    model.move(others, "training", date(2021, 6, 30))
    _sweep(factory, clock, date(2021, 2, 22), model)  # 西峡: a reminder (due 02-24)
    _sweep(factory, clock, date(2021, 3, 10), model)  # 西峡: overdue, city (→ province), province

    # 06-20: six schools end training (3 briefings each); 巩义 asks for and gets an extension to 09-30
    done6 = [c for c in others if c[:6] in (ZHONGYUAN, DENGZHOU, JIYUAN)]
    gongyi = [c for c in others if c.startswith(GONGYI)]
    _facts(factory, clock, tmp_path, date(2021, 6, 20),
           [[c, f, v] for c in done6 for f, v in (("briefings_submitted", "3"), ("training_ended", "1"))], CONTRACTOR)
    with transaction(factory) as s:
        ext = write_csv(tmp_path / "延期.csv", ["学校标识码", "操作", "新截止日期", "理由"],
                        [[c, "申请", "2021-09-30", "疫情推迟集中培训"] for c in gongyi]
                        + [[c, "批准", "", "情况属实"] for c in gongyi])
        assert import_extensions(s, clock, ext, actor=OFFICE, requester=CONTRACTOR).changed == 4
    model.move(done6, "deliverables", date(2021, 6, 20) + timedelta(days=30))  # 培训结束后30天内: 07-20
    model.move(gongyi, "training", date(2021, 9, 30))
    _sweep(factory, clock, date(2021, 6, 20), model)

    # 07-15: bug 3 — the deliverables are not overdue (the final deadline 06-30 binds training only)
    _sweep(factory, clock, date(2021, 7, 15), model)
    _facts(factory, clock, tmp_path, date(2021, 7, 16), [[c, f, v] for c in done6 for f, v in (
        ("self_evaluation_submitted", "1"), ("course_resources_submitted", "1"), ("case_collection_share", "0.12"),
        ("publicity_submitted", "1"))])
    model.move(done6, "evaluation", date(2021, 7, 16) + timedelta(days=60))
    _sweep(factory, clock, date(2021, 7, 16), model)

    # 09-25: 巩义 ends its extended training: deliverables due 30 days later (10-25), within the cap —
    # bug 2: not "due 06-30, 87 days overdue" with city and province alerts in the same sweep
    _facts(factory, clock, tmp_path, date(2021, 9, 25),
           [[c, f, v] for c in gongyi for f, v in (("briefings_submitted", "3"), ("training_ended", "1"))], CONTRACTOR)
    _facts(factory, clock, tmp_path, date(2021, 9, 25), [[c, "evaluation_done", "1"] for c in done6],
           Actor("评估机构", "evaluator"))
    model.move(gongyi, "deliverables", date(2021, 9, 25) + timedelta(days=30))
    model.move(done6, "done", None)
    _sweep(factory, clock, date(2021, 9, 25), model)
    assert _states(factory) == {**dict.fromkeys(done6, "done"), **dict.fromkeys(gongyi, "deliverables"),
                                **dict.fromkeys(xixia, "registration")}

    with transaction(factory) as s:
        # the province's view: five city-level units, the two direct counties among them
        _, rows = status_table(s, clock, region=PROVINCE, people=True)
        by_unit = {r.region_code: r for r in rows}
        assert set(by_unit) == set(UNIT.values())
        assert all((r.teachers, r.management) == (r.schools * 3, r.schools) for r in rows)
        ranked = ranked_regions(s, clock, find_plan(s, None), PROVINCE)
        expected = {unit: sum(model.stage[c] == "done" for c in SCHOOLS if UNIT[c[:6]] == unit) / 2 for unit in UNIT.values()}
        assert {r["region_code"]: r["done_share"] for r in ranked} == expected
        overdue = {unit: sum(1 for c in SCHOOLS if UNIT[c[:6]] == unit and model.due[c] and model.due[c] < date(2021, 9, 25))
                   for unit in UNIT.values()}
        assert {r["region_code"]: r["overdue"] for r in ranked} == overdue == {**dict.fromkeys(UNIT.values(), 0), NANYANG: 2}
        # bulletins: only to the offices with schools in the plan (安阳 has none)
        assert run_bulletins(s, clock) == 3
        told = {c for c, in s.execute(select(Contact.scope_code).join(Notification, Notification.contact_id == Contact.id)
                                     .where(Notification.kind == "bulletin"))}
        assert told == {PROVINCE, ZHENGZHOU, GONGYI}
        # per contractor (002 (九)): the workflow's 选送率/报到率/结业率, counted from this test's own entries
        registered = set(others)
        expected = {name: {"selection": (len(mine), len(mine)), "registration": (len(registered & mine), len(mine)),
                           "completion": (0, len(mine)), "done": sum(model.stage[c] == "done" for c in mine)}
                    for name in set(CONTRACTED.values()) for mine in [{c for c in SCHOOLS if CONTRACTED[c] == name}]}
        rows = contractor_ranking(s, clock, find_plan(s, None))
        assert {r["contractor"]: {**{k: (v["numerator"], v["denominator"]) for k, v in r["rates"].items()}, "done": r["done"]}
                for r in rows} == expected
        province_bulletin = s.scalars(select(Notification.body_text).join(Contact, Contact.id == Notification.contact_id)
                                      .where(Notification.kind == "bulletin", Contact.scope_code == PROVINCE)).one()
        for name, rates in expected.items():
            n, d = rates["registration"]
            assert f"（{n}/{d}）" in next(x for x in province_bulletin.splitlines() if name in x)
        assert verify_chains(s).ok and verify_state(s).ok
        # the management team is counted apart from the teachers (item 7), by the workflow's metrics
        from engine.metrics import metric_values
        from engine.workflow import workflow_for_version
        plan = find_plan(s, None)
        values = metric_values(s, workflow_for_version(s, plan.workflow_version_id),
                               select(SchoolRun.id, SchoolRun.school_code).where(SchoolRun.plan_id == plan.id))
        assert {(v["management_members"], v["trainees"]) for v in values.values()} == {(1.0, 3.0)}
