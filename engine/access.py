"""Who may see and do what: the one place every page, export, API call and action asks.

A region user sees the schools whose county, city or province code equals their scope; a school
admin sees exactly their school; a supervisor sees their region read-only. A school outside the
scope answers 404 (as if it did not exist), so a county officer cannot even learn which codes
belong to another county.

Recording a school fact is the one thing the workflow file decides rather than READ_ONLY: each
fact names the roles that may record it, so a supervisor records the supervision result the
workflow grants them and nothing else.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import NotFound, RolloutError
from engine.facts import role_refusal
from engine.i18n import tr
from engine.models import Plan, School, User
from engine.status import RunView, stored_views
from engine.workflow.model import Metric, Workflow

READ_ONLY = frozenset({"supervisor"})


class Forbidden(RolloutError):
    """The user is signed in but their role may not do this."""


def is_school_user(user: User) -> bool:
    return user.role == "school_admin"


def region_scope(user: User) -> str | None:
    """The region code whose subtree the user sees; None for a school admin (one school only)."""
    return None if is_school_user(user) else user.scope_code


def sees(user: User, school: School) -> bool:
    if is_school_user(user):
        return school.code == user.scope_code
    return user.scope_code in (school.county_code, school.city_code, school.province_code)


def school_for(session: Session, user: User, code: str) -> School:
    """The school if the user may see it; NotFound otherwise (same answer as a missing school)."""
    school = session.get(School, code)
    if school is None or not sees(user, school):
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
    return {"school": user.scope_code} if is_school_user(user) else {"region": user.scope_code}



def school_clause(user: User) -> ColumnElement[bool]:
    """A WHERE clause over ``School`` restricting a query to the user's schools."""
    if is_school_user(user):
        return School.code == user.scope_code
    code = user.scope_code
    return or_(School.county_code == code, School.city_code == code, School.province_code == code)


def scoped_views(session: Session, clock: Clock, user: User, plan: Plan, *where: ColumnElement[bool],
                 order: Any = None, limit: int | None = None, offset: int = 0) -> list[RunView]:
    """The plan's runs the user may see (stored status: due dates, overdue days, failing gates)."""
    return stored_views(session, clock, plan, school_clause(user), *where, order=order, limit=limit, offset=offset)
