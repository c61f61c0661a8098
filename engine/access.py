"""Who may see and do what: the one place every page, export, API call and action asks.

A region user sees the schools whose county, city or province code equals their scope; a school
admin sees exactly their school; a supervisor sees their region read-only. A school outside the
scope answers 404 (as if it did not exist), so a county officer cannot even learn which codes
belong to another county.

Recording a school fact is the one thing the workflow file decides rather than READ_ONLY: each
fact names the roles that may record it, so a supervisor records the supervision result the
workflow grants them and nothing else.

A contractor account (承训单位, seed 002 二 "8个单位承办本项目", role ``contractor``) sees exactly the
schools assigned to its contractor (``school_run.contractor``, `rollout contractors import`) inside
the region it was given: the schools of another contractor answer 404 like a school outside a
county. It acts as the workflow file grants the role ``contractor`` (briefings, training ended …).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, select, true
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import NotFound, RolloutError
from engine.facts import role_refusal
from engine.i18n import tr
from engine.models import Plan, Region, School, SchoolRun, User
from engine.regions import any_level_clause, region_clause, region_level
from engine.status import RunView, stored_views
from engine.workflow.model import Metric, Workflow

READ_ONLY = frozenset({"supervisor"})
CONTRACTOR = "contractor"
# Roles whose scope is a region's whole subtree (the rest see a school, or a contractor's schools).
REGION_ROLES = frozenset({"province_office", "city_office", "county_office", "supervisor"})


class Forbidden(RolloutError):
    """The user is signed in but their role may not do this."""


def is_school_user(user: User) -> bool:
    return user.role == "school_admin"


def is_contractor(user: User) -> bool:
    return user.role == CONTRACTOR


def lists_schools(user: User) -> bool:
    """Whether the user sees a set of schools rather than a region's tree (a school admin, a
    contractor): their overview lists those schools instead of ranking regions."""
    return is_school_user(user) or is_contractor(user)


def region_scope(user: User) -> str | None:
    """The region code whose subtree the user sees; None for a school admin (one school only)."""
    return None if is_school_user(user) else user.scope_code


def contractor_runs(name: str | None) -> Any:
    """The school codes of the runs assigned to contractor ``name`` (withdrawn runs left out)."""
    return select(SchoolRun.school_code).where(SchoolRun.contractor == name, SchoolRun.withdrawn_at.is_(None))


def sees(session: Session, user: User, school: School) -> bool:
    if is_school_user(user):
        return school.code == user.scope_code
    if user.scope_code not in (school.county_code, school.city_code, school.province_code):
        return False
    if is_contractor(user):
        assigned = contractor_runs(user.contractor).where(SchoolRun.school_code == school.code).limit(1)
        return session.scalar(assigned) is not None
    return True


def run_clause(user: User) -> ColumnElement[bool]:
    """A WHERE clause over ``SchoolRun``: a contractor's own runs only (one of its schools may
    also be in another programme's plan, which is not the contractor's to see); true otherwise."""
    return SchoolRun.contractor == user.contractor if is_contractor(user) else true()


def require_run(user: User, run: SchoolRun) -> None:
    """NotFound when a contractor asks for a run not assigned to it (as for a school outside scope)."""
    if is_contractor(user) and run.contractor != user.contractor:
        raise NotFound(tr(f"没有学校 {run.school_code}", f"no school {run.school_code}"))


def school_for(session: Session, user: User, code: str) -> School:
    """The school if the user may see it; NotFound otherwise (same answer as a missing school)."""
    school = session.get(School, code)
    if school is None or not sees(session, user, school):
        raise NotFound(tr(f"没有学校 {code}", f"no school {code}"))
    return school


def require_write(user: User) -> None:
    if user.role in READ_ONLY:
        raise Forbidden(tr("督导账号只读，不能执行操作", "supervisors are read-only and cannot take actions"))


def may_act(user: User) -> bool:
    return user.role not in READ_ONLY


def recordable_facts(user: User, wf: Workflow) -> list[Metric]:
    """The facts the user's role may record under ``wf`` (one per fact, in file order)."""
    return wf.facts_for_role(user.role)


def require_fact_role(user: User, wf: Workflow, name: str) -> None:
    """Forbidden when ``name`` is a fact of ``wf`` the user's role may not record.

    An unknown name is left to engine.facts.set_fact, which says which facts exist; the engine
    checks the role again, so this only turns the refusal into a 403 before any work is done.
    """
    allowed = wf.fact_roles(name)
    if allowed and user.role not in allowed:
        raise Forbidden(role_refusal(wf, name, user.role))


def audit_filter(user: User) -> dict[str, Any]:
    """Keyword arguments for engine.audit.query.list_events restricting it to the user's scope."""
    if is_school_user(user):
        return {"school": user.scope_code}
    if is_contractor(user):
        return {"region": user.scope_code, "schools": contractor_runs(user.contractor)}
    return {"region": user.scope_code}



def school_clause(user: User) -> ColumnElement[bool]:
    """A WHERE clause over ``School`` restricting a query to the user's schools."""
    if is_school_user(user):
        return School.code == user.scope_code
    if is_contractor(user):
        return and_(school_clause_for(user.scope_code), School.code.in_(contractor_runs(user.contractor)))
    return school_clause_for(user.scope_code)


def school_clause_for(region: str) -> ColumnElement[bool]:
    """A WHERE clause over ``School``: the schools of a region's subtree (county, city or province)."""
    return any_level_clause(region)


def region_level_of(session: Session, user: User) -> str | None:
    """The level of a region user's scope (province, city, county); None for everyone else."""
    if user.role not in REGION_ROLES:
        return None
    return region_level(session, user.scope_code)


def user_school_clause(session: Session, user: User) -> ColumnElement[bool]:
    """``school_clause`` through the index of the scope's level (engine/regions.py): for pages
    that aggregate over the scope, where the three-way test made SQLite scan every school."""
    if user.role not in REGION_ROLES:
        return school_clause(user)
    return region_clause(session, user.scope_code)


def region_subtree(session: Session, region: str) -> set[str]:
    """The region's code and every region below it in the stored tree."""
    children: dict[str | None, list[str]] = {}
    for code, parent in session.execute(select(Region.code, Region.parent_code)):
        children.setdefault(parent, []).append(code)
    found, todo = {region}, [region]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# Who may bring data in through the web or the API, in one place. Offices load their own subtree;
# a school admin and a supervisor load nothing (a supervisor is read-only, a school's data comes
# from its county). Facts and extensions (issue 14 item 9) are then checked row by row
# by the workflow's own rules: who may record each fact, who may request and decide an extension.
OFFICES = frozenset({"province_office", "city_office", "county_office"})
UPLOAD_KINDS = ("progress", "schools", "contacts", "facts", "extensions")
UPLOAD_ROLES: dict[str, frozenset[str]] = {kind: OFFICES for kind in UPLOAD_KINDS}
# A contractor reports its own schools' facts (briefings, training ended, 报到率 …) and asks for
# their extensions (002 三 "承训单位可向……执行办公室提出延期申请"), rows confined to its schools.
UPLOAD_ROLES |= {kind: OFFICES | {CONTRACTOR} for kind in ("facts", "extensions")}


def upload_kinds(user: User) -> list[str]:
    """The kinds of file the user may import, in display order (empty: no 导入数据 page)."""
    return [kind for kind in UPLOAD_KINDS if user.role in UPLOAD_ROLES[kind]]


def require_upload(user: User, kind: str) -> str:
    """The region a user's import is confined to (their scope); Forbidden when they may not
    import files of ``kind``. Rows outside that region are problems of the file, never written."""
    if kind not in UPLOAD_ROLES:
        raise NotFound(tr(f"没有导入类型 {kind}", f"no import kind {kind}"))
    if user.role not in UPLOAD_ROLES[kind]:
        raise Forbidden(tr("您的角色不能导入数据", "your role may not import data"))
    return user.scope_code


def scoped_views(session: Session, clock: Clock, user: User, plan: Plan, *where: ColumnElement[bool],
                 order: Any = None, limit: int | None = None, offset: int = 0) -> list[RunView]:
    """The plan's runs the user may see (stored status: due dates, overdue days, failing gates)."""
    return stored_views(session, clock, plan, user_school_clause(session, user), *where, order=order, limit=limit, offset=offset)
