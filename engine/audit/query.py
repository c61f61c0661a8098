"""Reading the audit trail for supervisors: filter by school, region subtree, actor, trigger, time.

Times are stored in UTC and shown in the office's local time (Asia/Shanghai by default). Exports
are what offices open in Excel: CSV with a UTF-8 BOM (without it Excel guesses GBK and garbles the
Chinese) and Chinese column headers, written by ``engine.export`` so that a school name, actor or
reason such as ``=HYPERLINK(…)`` stays text; or JSON for other programs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from engine.audit.chain import AUDIT
from engine.export import write_csv
from engine.i18n import tr
from engine.models import School

LOCAL_TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class EventRow:
    id: int
    chain: str
    seq: int
    at: datetime  # aware UTC
    actor: str
    role: str
    plan_id: int | None
    run_id: int | None
    school_code: str | None
    school_name: str | None
    from_state: str | None
    to_state: str | None
    trigger: str
    reason: str | None
    gates: Any
    workflow_version: str | None
    hash: str

    def local_at(self, tz: str = LOCAL_TZ) -> str:
        """E.g. ``2021-07-01 09:00:00`` for 01:00 UTC: what a clerk in the office reads."""
        return self.at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")

    def as_dict(self, tz: str = LOCAL_TZ) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["at_local"] = self.local_at(tz)
        return data


def list_events(
    session: Session,
    *,
    school: str | None = None,
    region: str | None = None,
    actor: str | None = None,
    trigger: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = False,
    triggers: Sequence[str] | None = None,
    plan_id: int | None = None,
    plan_events: bool = False,
    schools: Any = None,
) -> list[EventRow]:
    """Events oldest first (``newest_first``: the other way, as a page shows them). ``since`` is
    inclusive, ``until`` exclusive.

    ``region`` is a 6-digit division code and matches its whole subtree (a province finds its
    cities' and counties' schools). Plan-level events have no school, so a school or region filter
    leaves them out (``plan_events``: a region filter keeps them); without one they are included.
    ``triggers`` keeps any of several triggers, ``plan_id`` one plan's events (a plan's change history).
    ``schools`` (a SELECT of school codes: a contractor's schools) keeps only those schools' events.
    """
    stmt = select(*AUDIT.c, School.name.label("school_name")).outerjoin(
        School, School.code == AUDIT.c.school_code
    )
    stmt = stmt.where(*_conditions(school=school, region=region, actor=actor, trigger=trigger, since=since,
                                   until=until, triggers=triggers, plan_id=plan_id, plan_events=plan_events,
                                   schools=schools))
    order = (AUDIT.c.at.desc(), AUDIT.c.id.desc()) if newest_first else (AUDIT.c.at, AUDIT.c.id)
    stmt = stmt.order_by(*order).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        EventRow(
            id=r.id, chain=r.chain, seq=r.seq, at=r.at, actor=r.actor, role=r.role, plan_id=r.plan_id,
            run_id=r.run_id, school_code=r.school_code, school_name=r.school_name,
            from_state=r.from_state, to_state=r.to_state, trigger=r.trigger, reason=r.reason,
            gates=r.gates, workflow_version=r.workflow_version, hash=r.hash,
        )
        for r in session.execute(stmt)
    ]


def _conditions(*, school: str | None = None, region: str | None = None, actor: str | None = None,
                trigger: str | None = None, since: datetime | None = None, until: datetime | None = None,
                triggers: Sequence[str] | None = None, plan_id: int | None = None,
                plan_events: bool = False, schools: Any = None) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``list_events`` and ``count_events`` (one place, so a page's total
    always counts the rows it pages through)."""
    out: list[ColumnElement[bool]] = []
    if school is not None:
        out.append(AUDIT.c.school_code == school)
    if region is not None:
        in_region = or_(School.county_code == region, School.city_code == region, School.province_code == region)
        out.append(or_(in_region, AUDIT.c.school_code.is_(None)) if plan_events else in_region)
    if schools is not None:
        out.append(AUDIT.c.school_code.in_(schools))
    if actor is not None:
        out.append(AUDIT.c.actor == actor)
    if trigger is not None:
        out.append(AUDIT.c.trigger == trigger)
    if triggers is not None:
        out.append(AUDIT.c.trigger.in_(list(triggers)))
    if plan_id is not None:
        out.append(AUDIT.c.plan_id == plan_id)
    if since is not None:
        out.append(AUDIT.c.at >= since)
    if until is not None:
        out.append(AUDIT.c.at < until)
    return out


def count_events(session: Session, **filters: Any) -> int:
    """How many events ``list_events`` with the same filters returns (a page's total)."""
    sub = select(AUDIT.c.id).outerjoin(School, School.code == AUDIT.c.school_code).where(*_conditions(**filters))
    return session.scalar(select(func.count()).select_from(sub.subquery())) or 0


def headers() -> list[str]:
    return [
        tr("时间", "Time"), tr("审计链", "Chain"), tr("序号", "Seq"), tr("学校标识码", "School code"),
        tr("学校", "School"), tr("操作人", "Actor"), tr("角色", "Role"), tr("操作", "Trigger"),
        tr("原阶段", "From"), tr("新阶段", "To"), tr("理由", "Reason"), tr("门槛", "Gates"),
        tr("工作流版本", "Workflow version"), tr("哈希", "Hash"),
    ]


def cells(row: EventRow, tz: str = LOCAL_TZ) -> list[Any]:
    gates = json.dumps(row.gates, ensure_ascii=False, separators=(",", ":")) if row.gates else ""
    return [
        row.local_at(tz), row.chain, row.seq, row.school_code, row.school_name, row.actor, row.role,
        row.trigger, row.from_state, row.to_state, row.reason, gates, row.workflow_version, row.hash,
    ]


def export_csv(rows: list[EventRow], stream: TextIO, tz: str = LOCAL_TZ) -> None:
    """CSV for Excel: BOM first, CRLF rows, headers in the current language (Chinese by default),
    formula-like text neutralised (``engine.export.write_csv``)."""
    write_csv(stream, headers(), (cells(row, tz) for row in rows))


def export_json(rows: list[EventRow], stream: TextIO, tz: str = LOCAL_TZ) -> None:
    json.dump([r.as_dict(tz) for r in rows], stream, ensure_ascii=False, indent=2)
    stream.write("\n")
