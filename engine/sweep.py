"""The sweep: auto-advance what is ready, then queue every reminder, overdue alert and escalation
that is due — one digest per recipient and kind — in the same transaction as its dedupe records.

Bulletins (通报) rank the regions below an office by completion and overdue rates, as the Henan
office publishes 选送率/报到率/结业率 (seed 002), with an XLSX attachment.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .clock import Clock
from .deadline import local_date
from .i18n import tr
from .models import Contact, NoticeItem, Plan, Region, School, SchoolRun
from .plan import find_plan
from .reminder import DueItem, due_items
from .runs import SYSTEM, Actor, advance_all_ready
from .status import RunView, status_table, stored_views
from .workflow_store import workflow_for_version

KINDS = ("reminder", "overdue", "escalation")


@dataclass
class SweepResult:
    advanced: int = 0
    items: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    messages: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"advanced": self.advanced, "items": self.items, "messages": self.messages}


def _contacts(session: Session, scopes: set[str]) -> dict[tuple[str, str], list[Any]]:
    """Active contacts of just these schools and regions (a province has 50,000 school contacts)."""
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    codes = sorted(scopes)
    for i in range(0, len(codes), 5000):
        for c in session.execute(select(*_CONTACT).where(Contact.active, Contact.scope_code.in_(codes[i:i + 5000]))
                                 .order_by(Contact.id)):
            out[(c.scope_code, c.level)].append(c)
    return out


_CONTACT = (Contact.id, Contact.scope_code, Contact.level, Contact.name, Contact.channel, Contact.address,
            Contact.secret_ref, Contact.lang)


def _schools(session: Session, codes: set[str]) -> dict[str, tuple[str, str | None, str | None]]:
    found = sorted(codes)
    out: dict[str, tuple[str, str | None, str | None]] = {}
    for i in range(0, len(found), 5000):
        out.update({code: (county, city, prov) for code, county, city, prov in session.execute(
            select(School.code, School.county_code, School.city_code, School.province_code)
            .where(School.code.in_(found[i:i + 5000])))})
    return out


def _existing(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), 1000):
        found.update(session.scalars(select(NoticeItem.dedupe_key).where(NoticeItem.dedupe_key.in_(keys[i:i + 1000]))))
    return found


def run_sweep(session: Session, clock: Clock, plan_code: str | None = None) -> SweepResult:
    from notifications.outbox import enqueue_many

    plan = find_plan(session, plan_code)
    wf = workflow_for_version(session, plan.workflow_version_id)
    result = SweepResult()
    for _ in range(len(wf.stages)):  # a school whose later gates already pass moves on in one sweep
        moved = advance_all_ready(session, clock, actor=Actor(SYSTEM, SYSTEM), plan_code=plan.code, auto_only=True,
                                  candidates_only=True).advanced
        result.advanced += moved
        if not moved:
            break
    now = clock.now()
    today = local_date(now, plan.timezone)
    # Only runs due within the longest reminder lead time (or past due) can have an item today.
    horizon = today + timedelta(days=max((b for s in wf.stages if s.remind for b in s.remind.before_days), default=0))
    due: list[tuple[RunView, DueItem]] = [
        (view, item) for view in stored_views(session, clock, plan, SchoolRun.due_date <= horizon,
                                              SchoolRun.started_at <= now) if view.due is not None
        for item in due_items(view.run_id, view.state, view.due.due, wf.stage(view.state).remind, today)]
    if not due:
        return result
    schools = _schools(session, {view.school_code for view, _ in due})
    names = dict(session.execute(select(Region.code, Region.name)).all())

    def scope(view: RunView, level: str) -> str:
        county, city, prov = schools[view.school_code]
        return {"school": view.school_code, "county": county, "city": city, "province": prov}[level] or ""

    contacts = _contacts(session, {scope(view, item.level) for view, item in due})
    pending: dict[tuple[int, str], list[tuple[str, DueItem, RunView]]] = defaultdict(list)
    for view, item in due:
        for contact in contacts.get((scope(view, item.level), item.level), []):
            pending[(contact.id, item.kind)].append((f"{item.key}:c{contact.id}", item, view))
    all_keys = [k for group in pending.values() for k, _, _ in group]
    seen = _existing(session, all_keys)
    by_id = {c.id: c for group in contacts.values() for c in group}
    digests: list[tuple[str, list[tuple[str, DueItem, RunView]], dict[str, object]]] = []
    for (contact_id, kind), group in sorted(pending.items()):
        fresh = [(k, item, view) for k, item, view in group if k not in seen]
        if not fresh:
            continue
        contact = by_id[contact_id]
        fresh.sort(key=lambda x: (-(x[1].days_overdue or 0), x[1].days_left or 0, x[2].school_code))
        context = {
            "kind": kind, "plan_title": plan.title, "now": now.astimezone(_tz(plan)).strftime("%Y-%m-%d %H:%M"),
            "recipient": {"name": contact.name, "level": contact.level, "region_name": names.get(contact.scope_code, contact.scope_code)},
            "items": [_item_context(item, view, wf, names, schools) for _, item, view in fresh],
        }
        digest = hashlib.sha256("\n".join(sorted(k for k, _, _ in fresh)).encode()).hexdigest()[:24]
        digests.append((kind, fresh, _rendered(kind, contact, context, f"{kind}:c{contact.id}:{digest}", now)))
    # One statement for the notifications, one for their dedupe records: both commit with the
    # caller's transaction or not at all.
    ids = enqueue_many(session, [row for _, _, row in digests])
    records: list[dict[str, Any]] = []
    for kind, fresh, row in digests:
        note = ids.get(str(row["dedupe_key"]))
        records += [{"dedupe_key": k, "notification_id": note, "run_id": view.run_id, "kind": kind,
                     "level": item.level, "created_at": now} for k, item, view in fresh]
        result.items[kind] += len(fresh)
        result.messages += note is not None
    if records:
        session.execute(insert(NoticeItem), records)
    return result


def _tz(plan: Plan) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(plan.timezone)


def _item_context(item: DueItem, view: RunView, wf: Any, names: dict[str, str], schools: dict[str, Any]) -> dict[str, Any]:
    assert view.due is not None
    return {
        "school_code": view.school_code, "school_name": view.school_name,
        "county_name": names.get(schools[view.school_code][0], ""),
        "stage_title": str(wf.stage(view.state).title), "due_date": view.due.due.isoformat(),
        "days_left": item.days_left, "days_overdue": item.days_overdue,
        "failing_gates": [g.explain() for g in view.gates if not g.passed],
        "provisional_calendar": view.due.provisional,
    }


def _rendered(kind: str, contact: Any, context: dict[str, Any], key: str, now: Any,
              attachment: tuple[str, bytes] | None = None) -> dict[str, object]:
    """The outbox row for one digest or bulletin to ``contact``, rendered in the contact's language."""
    from notifications.outbox import outgoing
    from notifications.render import render

    template = "bulletin" if kind == "bulletin" else kind
    chat = contact.channel in ("dingtalk", "wecom", "feishu")
    return outgoing(
        dedupe_key=key, kind=kind, channel=contact.channel, address=contact.address,
        subject=render(template, contact.lang, "subject", context).strip(),
        text=render(template, contact.lang, "txt", context),
        html=None if chat else render(template, contact.lang, "html", context),
        markdown=render(template, contact.lang, "md", context) if chat or contact.channel == "file" else None,
        secret_ref=contact.secret_ref, contact_id=contact.id,
        attachment_name=attachment[0] if attachment else None, attachment=attachment[1] if attachment else None,
        now=now,
    )


def run_bulletins(session: Session, clock: Clock, plan_code: str | None = None) -> int:
    """One bulletin per office contact (province, city, county) per ISO week; returns messages queued."""
    from notifications.bulletin_xlsx import bulletin_workbook
    from notifications.outbox import enqueue_many

    plan = find_plan(session, plan_code)
    now = clock.now()
    today: date = local_date(now, plan.timezone)
    year, week, _ = today.isocalendar()
    names = dict(session.execute(select(Region.code, Region.name)).all())
    queued = 0
    for contact in session.scalars(select(Contact).where(Contact.active, Contact.level.in_(["province", "city", "county"]))
                                   .order_by(Contact.id)):
        wf, rows = status_table(session, clock, plan_code=plan.code, region=contact.scope_code)
        done_stage = [s.id for s in wf.stages if s.terminal]
        table: list[dict[str, Any]] = []
        for r in rows:
            done = sum(r.stages.get(s, 0) for s in done_stage)
            table.append({"region_code": r.region_code, "region_name": r.region_name, "schools": r.schools,
                          "done": done, "done_share": done / r.schools if r.schools else 0.0,
                          "overdue": r.overdue, "overdue_share": r.overdue / r.schools if r.schools else 0.0,
                          "stage_counts": {str(s.title): r.stages.get(s.id, 0) for s in wf.stages}})
        table.sort(key=lambda x: (-x["done_share"], x["overdue_share"], x["region_code"]))
        for rank, row in enumerate(table, 1):
            row["rank"] = rank
        context = {"office": {"name": contact.name, "level": contact.level}, "plan_title": plan.title,
                   "period": tr(f"{year}年第{week}周", f"{year} week {week}"), "rows": table}
        xlsx = bulletin_workbook(context)
        key = f"bulletin:c{contact.id}:{year}-W{week:02d}"
        queued += len(enqueue_many(session, [_rendered(
            "bulletin", contact, context, key, now,
            (f"通报-{names.get(contact.scope_code, contact.scope_code)}-{year}W{week:02d}.xlsx", xlsx))]))
    return queued
