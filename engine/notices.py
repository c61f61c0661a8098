"""Which reminders, overdue alerts and escalations are due today, to whom, grouped into digests.

The rules of *when* (days before, repeats, escalation steps) are ``engine.reminder``'s, per run;
this module applies them to a plan's runs and its contact list: one digest per recipient and kind,
sorted by days overdue, holding only items no earlier sweep recorded (level-triggered: each item
has a deterministic dedupe key, so after an outage a recipient gets one catch-up, not one per
missed day). Rendering and queueing the digests is the service layer's (``service.sweep``);
``record_notices`` then stores the dedupe records in the same transaction as the queued messages.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.deadline import local_date
from engine.models import Contact, NoticeItem, Plan, Region, School, SchoolRun
from engine.reminder import DueItem, due_items
from engine.status import RunView, stored_views
from engine.workflow.model import ESCALATION_LEVELS, Workflow
from engine.workflow.versions import workflow_for_version

KINDS = ("reminder", "overdue", "escalation")
_CONTACT = (Contact.id, Contact.scope_code, Contact.level, Contact.name, Contact.channel, Contact.address,
            Contact.secret_ref, Contact.lang)


@dataclass(frozen=True)
class Digest:
    """One message to send: a recipient, a kind, the new items in it, and the template's context."""

    kind: str
    contact: Any  # a row of _CONTACT: id, scope_code, level, name, channel, address, secret_ref, lang
    items: list[tuple[str, DueItem, RunView]]  # (dedupe key, item, run) in the order shown
    context: dict[str, Any]
    key: str  # the outbox dedupe key: the same items to the same recipient are one message
    rerouted: int = 0  # items meant for a lower level that had no recipient (sent here instead)


def _contacts(session: Session, scopes: set[str]) -> dict[tuple[str, str], list[Any]]:
    """Active contacts of just these schools and regions (a province has 50,000 school contacts)."""
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    codes = sorted(scopes)
    for i in range(0, len(codes), 5000):
        for c in session.execute(select(*_CONTACT).where(Contact.active, Contact.scope_code.in_(codes[i:i + 5000]))
                                 .order_by(Contact.id)):
            out[(c.scope_code, c.level)].append(c)
    return out


def _schools(session: Session, codes: set[str]) -> dict[str, tuple[str, str | None, str | None]]:
    found = sorted(codes)
    out: dict[str, tuple[str, str | None, str | None]] = {}
    for i in range(0, len(found), 5000):
        out.update({code: (county, city, prov) for code, county, city, prov in session.execute(
            select(School.code, School.county_code, School.city_code, School.province_code)
            .where(School.code.in_(found[i:i + 5000])))})
    return out


def _other_versions(session: Session, plan: Plan) -> dict[int, int]:
    """Run id → workflow version, for the plan's runs pinned to another version than the plan's."""
    return dict(session.execute(select(SchoolRun.id, SchoolRun.workflow_version_id).where(
        SchoolRun.plan_id == plan.id, SchoolRun.workflow_version_id != plan.workflow_version_id,
        SchoolRun.due_date.is_not(None))).all())


def _existing(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), 1000):
        found.update(session.scalars(select(NoticeItem.dedupe_key).where(NoticeItem.dedupe_key.in_(keys[i:i + 1000]))))
    return found


@dataclass(frozen=True)
class Notices:
    """Today's digests, and the due items no one receives: (level, kind, school) of each item
    with no recipient at its level nor, for an escalation, at any level above (reported by the
    sweep and the scheduler status, never dropped silently)."""

    digests: list[Digest]
    unrouted: list[tuple[str, str, str]]


def due_digests(session: Session, clock: Clock, plan: Plan, wf: Workflow) -> list[Digest]:
    """Every digest the plan's runs call for today that has something new in it."""
    return due_notices(session, clock, plan, wf).digests


def due_notices(session: Session, clock: Clock, plan: Plan, wf: Workflow) -> Notices:
    """``due_digests`` with the items that reach no one."""
    now = clock.now()
    today = local_date(now, plan.timezone)
    # Runs moved to another workflow version than the plan's (a region's version move,
    # engine/version_apply.py) are reminded by the rules of the version they are on.
    other = _other_versions(session, plan)
    wfs = {version_id: workflow_for_version(session, version_id) for version_id in set(other.values())}
    # Only runs due within the longest reminder lead time (or past due) can have an item today.
    horizon = today + timedelta(days=max((b for w in (wf, *wfs.values()) for s in w.stages if s.remind
                                          for b in s.remind.before_days), default=0))

    def pinned(view: RunView) -> Workflow:
        return wfs[other[view.run_id]] if view.run_id in other else wf

    due: list[tuple[RunView, DueItem]] = [
        (view, item) for view in stored_views(session, clock, plan, SchoolRun.due_date <= horizon,
                                              SchoolRun.started_at <= now) if view.due is not None
        for item in due_items(view.run_id, view.state, view.due.due, pinned(view).stage(view.state).remind, today)]
    if not due:
        return Notices([], [])
    schools = _schools(session, {view.school_code for view, _ in due})
    names = dict(session.execute(select(Region.code, Region.name)).all())

    def scope(view: RunView, level: str) -> str:
        county, city, prov = schools[view.school_code]
        return {"school": view.school_code, "county": county, "city": city, "province": prov}[level] or ""

    contacts = _contacts(session, {scope(view, level) for view, item in due for level in _levels(item)})
    pending: dict[tuple[int, str], list[tuple[str, DueItem, RunView]]] = defaultdict(list)
    rerouted: dict[str, str] = {}  # item key → the level it was meant for (it went to a higher one)
    unrouted: list[tuple[DueItem, RunView]] = []
    for view, item in due:
        found = next(((lv, c) for lv in _levels(item) if (c := contacts.get((scope(view, lv), lv)))), None)
        if found is None:
            unrouted.append((item, view))
            continue
        level, recipients = found
        if level != item.level:
            rerouted[item.key] = item.level
        for contact in recipients:
            pending[(contact.id, item.kind)].append((f"{item.key}:c{contact.id}", item, view))
    seen = _existing(session, [k for group in pending.values() for k, _, _ in group])
    by_id = {c.id: c for group in contacts.values() for c in group}
    local_now = now.astimezone(ZoneInfo(plan.timezone)).strftime("%Y-%m-%d %H:%M")
    digests: list[Digest] = []
    for (contact_id, kind), group in sorted(pending.items()):
        fresh = [(k, item, view) for k, item, view in group if k not in seen]
        if not fresh:
            continue
        contact = by_id[contact_id]
        fresh.sort(key=lambda x: (-(x[1].days_overdue or 0), x[1].days_left or 0, x[2].school_code))
        context = {
            "kind": kind, "plan_title": plan.title, "now": local_now,
            "recipient": {"name": contact.name, "level": contact.level,
                          "region_name": names.get(contact.scope_code, contact.scope_code)},
            "rerouted": sum(item.key in rerouted for _, item, _ in fresh),
            "items": [_item_context(item, view, pinned(view), names, schools) | {"rerouted_from": rerouted.get(item.key)}
                      for _, item, view in fresh],
        }
        digest = hashlib.sha256("\n".join(sorted(k for k, _, _ in fresh)).encode()).hexdigest()[:24]
        digests.append(Digest(kind, contact, fresh, context, f"{kind}:c{contact.id}:{digest}",
                              sum(item.key in rerouted for _, item, _ in fresh)))
    return Notices(digests, [(item.level, item.kind, view.school_code) for item, view in unrouted])


def _levels(item: DueItem) -> tuple[str, ...]:
    """Where an item may go: its own level; an escalation with no recipient there goes up a level
    at a time (issue 14: the 30-day city escalations of 省直管县 had no recipient and vanished)."""
    if item.kind != "escalation":
        return (item.level,)
    return ESCALATION_LEVELS[ESCALATION_LEVELS.index(item.level):]


def _item_context(item: DueItem, view: RunView, wf: Workflow, names: dict[str, str],
                  schools: dict[str, Any]) -> dict[str, Any]:
    assert view.due is not None
    return {
        "school_code": view.school_code, "school_name": view.school_name,
        "county_name": names.get(schools[view.school_code][0], ""),
        "stage_title": str(wf.stage(view.state).title), "due_date": view.due.due.isoformat(),
        "days_left": item.days_left, "days_overdue": item.days_overdue,
        "failing_gates": [g.explain() for g in view.gates if not g.passed],
        "provisional_calendar": view.due.provisional,
    }


def record_notices(session: Session, digests: list[Digest], queued: dict[str, int], now: Any) -> None:
    """Store the dedupe record of every item sent, beside the id of the message that carried it.

    ``queued`` maps a digest's key to its notification id (absent when the outbox already had it).
    """
    records = [{"dedupe_key": k, "notification_id": queued.get(d.key), "run_id": view.run_id, "kind": d.kind,
                "level": item.level, "created_at": now} for d in digests for k, item, view in d.items]
    if records:
        session.execute(insert(NoticeItem), records)
