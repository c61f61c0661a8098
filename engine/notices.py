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
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.deadline import local_date
from engine.forecast import DEFAULT_SETTINGS, SchoolForecast, forecast_plan, store_risks
from engine.models import AuditEvent, Contact, NoticeItem, Plan, Region, School, SchoolRun
from engine.reminder import DueItem, due_items
from engine.status import RunView, stored_views
from engine.workflow.model import ESCALATION_LEVELS, Workflow
from engine.workflow.versions import workflow_for_version

KINDS = ("reminder", "overdue", "escalation", "warning")
WARNING_LEVELS = ("school", "county")  # who hears a 预警: the school and its responsible body
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


# --------------------------------------------------------------------------- early warning (预警)


@dataclass(frozen=True)
class Warnings:
    """What the sweep's early warning found: digests to queue, and the runs whose risk fell back
    below the threshold (their dedupe record re-arms the warning for a later crossing)."""

    digests: list[Digest]
    rearmed: list[dict[str, Any]]


def _crossings(session: Session, run_ids: list[int]) -> dict[str, tuple[int, int]]:
    """Per warning base (run, stage, due): the last crossing warned and the last one re-armed."""
    out: dict[str, tuple[int, int]] = {}
    for i in range(0, len(run_ids), 1000):
        for key, kind in session.execute(select(NoticeItem.dedupe_key, NoticeItem.kind).where(
                and_(NoticeItem.run_id.in_(run_ids[i:i + 1000]), NoticeItem.kind.in_(("warning", "warning_clear"))))):
            parts = key.split(":")  # warn[-clear]:run:<id>:<stage>:<due>:n<k>[:c<contact>]
            base, n = ":".join(parts[1:5]), int(parts[5][1:])
            warned, cleared = out.get(base, (0, 0))
            out[base] = (max(warned, n), cleared) if kind == "warning" else (warned, max(cleared, n))
    return out


def due_warnings(session: Session, clock: Clock, plan: Plan, wf: Workflow,
                 forecasts: list[SchoolForecast] | None = None, store: bool = False) -> Warnings:
    """预警 digests for runs whose stage sets ``remind.warn_at_risk`` and whose forecast probability
    of missing the due date (still ahead) has crossed it since the last warning.

    Level-triggered like the reminders: whether a run is above the threshold depends only on
    today's forecast (seeded, so a second sweep today agrees), and each crossing has its own
    number, so a run is warned once while it stays above, again only after it fell below (which
    ``rearmed`` records) and rose again, and once — not once per missed day — after an outage.
    With ``store`` (the sweep), the forecasts it computes are kept as each run's risk
    (``engine.forecast.store``) for the dashboard."""
    stages = {s.id: s.remind.warn_at_risk for s in wf.stages if s.remind and s.remind.warn_at_risk}
    if not stages:
        return Warnings([], [])
    now = clock.now()
    today = local_date(now, plan.timezone)
    if forecasts is None:
        _, forecasts = forecast_plan(session, clock, plan.code)
        if store:
            store_risks(session, plan.id, forecasts, now, today, DEFAULT_SETTINGS, "sweep")
    candidates = [f for f in forecasts if f.stage in stages and f.due_date is not None and f.due_date >= today
                  and f.p_miss_due is not None]
    state = _crossings(session, [f.run_id for f in candidates])
    views = {v.run_id: v for v in stored_views(session, clock, plan, SchoolRun.id.in_([f.run_id for f in candidates]))} \
        if candidates else {}
    rearmed: list[dict[str, Any]] = []
    due: list[tuple[RunView, DueItem, SchoolForecast]] = []
    for f in candidates:
        assert f.due_date is not None and f.p_miss_due is not None
        base = f"run:{f.run_id}:{f.stage}:{f.due_date.isoformat()}"
        warned, cleared = state.get(base, (0, 0))
        above = f.p_miss_due >= stages[f.stage]
        if above and warned == cleared and f.run_id in views:
            for level in WARNING_LEVELS:
                item = DueItem(f"warn:{base}:n{warned + 1}", "warning", level, (f.due_date - today).days, None)
                due.append((views[f.run_id], item, f))
        elif not above and warned > cleared:
            rearmed.append({"dedupe_key": f"warn-clear:{base}:n{warned}", "notification_id": None, "run_id": f.run_id,
                            "kind": "warning_clear", "level": "school", "created_at": now})
    return Warnings(_warning_digests(session, now, plan, wf, due), rearmed)


def _warning_digests(session: Session, now: Any, plan: Plan, wf: Workflow,
                     due: list[tuple[RunView, DueItem, SchoolForecast]]) -> list[Digest]:
    if not due:
        return []
    schools = _schools(session, {view.school_code for view, _, _ in due})
    names = dict(session.execute(select(Region.code, Region.name)).all())

    def scope(view: RunView, level: str) -> str:
        county, city, prov = schools[view.school_code]
        return {"school": view.school_code, "county": county, "city": city, "province": prov}[level] or ""

    contacts = _contacts(session, {scope(view, item.level) for view, item, _ in due})
    by_id = {c.id: c for group in contacts.values() for c in group}
    pending: dict[int, list[tuple[str, DueItem, RunView, SchoolForecast]]] = defaultdict(list)
    for view, item, f in due:
        for contact in contacts.get((scope(view, item.level), item.level), []):
            pending[contact.id].append((f"{item.key}:c{contact.id}", item, view, f))
    local_now = now.astimezone(ZoneInfo(plan.timezone)).strftime("%Y-%m-%d %H:%M")
    digests = []
    for contact_id, group in sorted(pending.items()):
        contact = by_id[contact_id]
        group.sort(key=lambda x: (-(x[3].p_miss_due or 0), x[2].school_code))
        items = []
        for _, item, view, f in group:
            context = _item_context(item, view, wf, names, schools)
            context |= {"p_miss_due": round(f.p_miss_due or 0, 2), "eta_p50": f.eta_p50.isoformat() if f.eta_p50 else None,
                        "teachers_at_risk": f.teachers_at_risk,
                        "teachers": [{"name": t.name, "shortfall": t.shortfall, "needed_pace": t.needed_pace}
                                     for t in f.teachers[:5]]}
            items.append(context)
        context = {"kind": "warning", "plan_title": plan.title, "now": local_now,
                   "recipient": {"name": contact.name, "level": contact.level,
                                 "region_name": names.get(contact.scope_code, contact.scope_code)},
                   "items": items}
        digest = hashlib.sha256("\n".join(sorted(k for k, _, _, _ in group)).encode()).hexdigest()[:24]
        digests.append(Digest("warning", contact, [(k, item, view) for k, item, view, _ in group], context,
                              f"warning:c{contact.id}:{digest}"))
    return digests


def record_rearmed(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store that these runs fell back below their warning threshold (no message goes out)."""
    if rows:
        session.execute(insert(NoticeItem), rows)


def warning_outcomes(session: Session, clock: Clock, plan: Plan) -> tuple[int, int, int]:
    """(runs warned, of those how many then missed the due date they were warned about, how many
    of those are still open — due date not reached yet): the demo's "was the warning right"."""
    warned: dict[tuple[int, str], date] = {}
    for key in session.scalars(select(NoticeItem.dedupe_key).where(NoticeItem.kind == "warning")):
        _, _, run_id, stage, due, *_ = key.split(":")
        warned.setdefault((int(run_id), stage), date.fromisoformat(due))
    if not warned:
        return 0, 0, 0
    today = local_date(clock.now(), plan.timezone)
    left: dict[tuple[int, str], date] = {}
    for moved_run, moved_from, at in session.execute(
            select(AuditEvent.run_id, AuditEvent.from_state, AuditEvent.at)
            .where(AuditEvent.run_id.in_({r for r, _ in warned}), AuditEvent.to_state != AuditEvent.from_state)
            .order_by(AuditEvent.seq)):
        found = (int(moved_run or 0), str(moved_from))
        if found in warned and found not in left:
            left[found] = local_date(at, plan.timezone)
    missed = sum(1 for k, due in warned.items() if (left[k] > due if k in left else today > due))
    pending = sum(1 for k, due in warned.items() if k not in left and today <= due)
    return len(warned), missed, pending
