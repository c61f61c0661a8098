"""Test data for the engine core: regions, schools, teachers, the shipped workflow and a plan file.

Rows are inserted directly with SQLAlchemy (the importers are tested on their own); the plan goes
through ``engine.plan.load_plan`` like an office's file would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import run_chain
from engine.clock import Clock
from engine.models import AuditEvent, Plan, Region, School, SchoolRun, Teacher, WorkflowVersion
from engine.plan import load_plan
from engine.run_status import refresh
from engine.runs import Actor
from engine.workflow.loader import load_workflow_file, read_source
from engine.workflow.model import Workflow
from engine.workflow.versions import register_workflow

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_PATH = REPO / "workflows" / "whole-school-2.0.yaml"

PROVINCE, CITY, COUNTY = "370000", "370300", "370323"  # 山东省 / 淄博市 / 沂源县
OTHER_COUNTY = "370302"  # 淄川区: a second county for region filters

PILOT = "3703230001"
EARLY = ("3703230002", "3703230003")  # batch b2: started 2021-06-15
LATE = ("3703230004", "3703230005")  # batch b3 (rest): starts 2021-09-01
OTHER = "3703020001"  # in OTHER_COUNTY, batch b2
ALL_SCHOOLS = (PILOT, *EARLY, *LATE, OTHER)

COUNTY_OFFICER = Actor("王主任", "county_office")
CITY_OFFICER = Actor("李科长", "city_office")
PROVINCE_OFFICER = Actor("赵处长", "province_office")
SCHOOL_ADMIN = Actor("刘老师", "school_admin")


def shipped_workflow() -> Workflow:
    return load_workflow_file(WORKFLOW_PATH)


def add_regions(session: Session) -> None:
    session.add_all([
        Region(code=PROVINCE, name="山东省", level="province", parent_code=None),
    ])
    session.flush()
    session.add(Region(code=CITY, name="淄博市", level="city", parent_code=PROVINCE))
    session.flush()
    session.add_all([
        Region(code=COUNTY, name="沂源县", level="county", parent_code=CITY),
        Region(code=OTHER_COUNTY, name="淄川区", level="county", parent_code=CITY),
    ])
    session.flush()


def add_school(session: Session, code: str, *, pilot: bool = False, county: str = COUNTY,
               name: str | None = None) -> School:
    school = School(code=code, name=name or f"测试学校{code[-4:]}", county_code=county, city_code=CITY,
                    province_code=PROVINCE, kind="primary", rural=False, pilot=pilot)
    session.add(school)
    session.flush()
    return school


def add_teachers(session: Session, school_code: str, n: int, *, online: float = 30.0, practice: float = 30.0,
                 points: int = 3, evidence: int = 3, result: str | None = "pass", start: int = 0) -> list[Teacher]:
    teachers = [Teacher(platform_id=f"T{school_code}{start + i:04d}", name=f"教师{start + i}", school_code=school_code,
                        online_hours=online, practice_hours=practice, points=",".join(str(k) for k in range(1, points + 1)),
                        points_count=points, evidence_count=evidence, evidence_result=result)
                for i in range(n)]
    session.add_all(teachers)
    session.flush()
    # Stands in for a progress import, which refreshes the stored status of the school's runs.
    refresh(session, SchoolRun.school_code == school_code)
    return teachers


def register_shipped(session: Session, clock: Clock) -> WorkflowVersion:
    return register_workflow(session, shipped_workflow(), read_source(WORKFLOW_PATH), clock)


def seed(session: Session, clock: Clock) -> WorkflowVersion:
    """Regions, the six schools (one pilot) and the shipped workflow."""
    add_regions(session)
    add_school(session, PILOT, pilot=True)
    for code in (*EARLY, *LATE):
        add_school(session, code)
    add_school(session, OTHER, county=OTHER_COUNTY)
    return register_shipped(session, clock)


def plan_data(**overrides: Any) -> dict[str, Any]:
    """A valid plan: pilot batch (2021-06-01), an early batch (06-15), the rest (09-01)."""
    data: dict[str, Any] = {
        "plan": "yiyuan-2021",
        "title": {"zh": "沂源县提升工程2.0整校推进", "en": "Yiyuan whole-school rollout"},
        "workflow": "whole-school-2.0",
        "workflow_version": "1",
        "year": 2021,
        "timezone": "Asia/Shanghai",
        "region": CITY,
        "final_deadline": "2022-11-30",
        "extension_cap": "2022-12-31",
        "batches": [
            {"id": "b1", "title": "试点", "start": "2021-06-01", "start_stage": "pilot", "share": 0.2,
             "schools": {"pilot": True}, "deadlines": {"pilot": "2021-12-31"}},
            {"id": "b2", "title": "第一批", "start": "2021-06-15", "start_stage": "planning", "share": 0.4,
             "schools": {"codes": [*EARLY, OTHER]}, "deadlines": {"planning": "2021-09-30"}},
            {"id": "b3", "title": "第二批", "start": "2021-09-01", "start_stage": "planning", "share": 0.4,
             "schools": {"rest": True}},
        ],
    }
    data.update(overrides)
    return data


def write_plan(tmp_path: Path, data: dict[str, Any] | str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def seed_with_plan(session: Session, clock: Clock, tmp_path: Path, **overrides: Any) -> Plan:
    seed(session, clock)
    return load_plan(session, write_plan(tmp_path, plan_data(**overrides)), clock)


def run_of(session: Session, school_code: str) -> SchoolRun:
    run = session.scalar(select(SchoolRun).where(SchoolRun.school_code == school_code))
    assert run is not None
    return run


def events_of(session: Session, school_code: str) -> list[AuditEvent]:
    run = run_of(session, school_code)
    return list(session.scalars(select(AuditEvent).where(AuditEvent.chain == run_chain(run.id)).order_by(AuditEvent.seq)))


def event_count(session: Session) -> int:
    return len(session.scalars(select(AuditEvent.id)).all())

