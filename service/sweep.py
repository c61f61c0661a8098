"""The daily sweep and the weekly bulletins: the engine decides what is due, this queues the messages.

A sweep auto-advances what is ready (``engine.runs.advance_auto``), then renders every digest
``engine.notices`` finds due — reminders, overdue alerts, escalations and early warnings (预警,
from the forecast, where a stage's ``remind`` sets ``warn_at_risk``) — and queues it with its dedupe records in the caller's transaction, so
a message and the record that it was sent commit together or not at all. Bulletins (通报) rank the
regions below each office (``engine.bulletin``) and go out once per ISO week with an XLSX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import (
    KINDS,
    Clock,
    Contact,
    Region,
    advance_auto,
    bulletin_week,
    contractor_ranking,
    due_notices,
    due_warnings,
    find_plan,
    lapse_stale_requests,
    office_contacts,
    ranked_regions,
    rate_columns,
    record_notices,
    record_rearmed,
    school_clause_for,
)
from engine.forecast import forecast_plan, schools_at_risk
from engine.workflow import workflow_for_version
from notifications import bulletin_workbook, enqueue_many, outgoing, render


@dataclass
class SweepResult:
    advanced: int = 0
    items: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    messages: int = 0
    lapsed: int = 0  # extension requests closed because the school left their stage
    rerouted: int = 0  # escalation items with no recipient at their level, sent to the next level up
    unrouted: list[dict[str, str]] = field(default_factory=list)  # items no one at any level receives

    def as_dict(self) -> dict[str, Any]:
        return {"advanced": self.advanced, "items": self.items, "messages": self.messages, "lapsed": self.lapsed,
                "rerouted": self.rerouted, "unrouted": self.unrouted}


def run_sweep(session: Session, clock: Clock, plan_code: str | None = None, templates: Path | None = None) -> SweepResult:
    """Auto-advance, then queue every due digest; ``templates`` is an office's override folder."""
    plan = find_plan(session, plan_code)
    wf = workflow_for_version(session, plan.workflow_version_id)
    result = SweepResult(advanced=advance_auto(session, clock, plan.code))
    now = clock.now()
    lapsed = lapse_stale_requests(session, clock, plan.code)
    result.lapsed = len(lapsed)
    if lapsed:
        result.messages += _tell_lapsed(session, plan, wf, lapsed, now, templates)
    notices = due_notices(session, clock, plan, wf)
    warnings = due_warnings(session, clock, plan, wf, store=True)  # 预警 (stored): only if a stage sets warn_at_risk
    record_rearmed(session, warnings.rearmed)
    digests = notices.digests + warnings.digests
    # Reported in the result (and so in `rollout sweep` and the scheduler's status): nothing due is
    # dropped silently when a level has no contact.
    result.unrouted = [{"level": lv, "kind": kind, "school": school} for lv, kind, school in notices.unrouted]
    if not digests:
        return result
    # One statement for the notifications, one for their dedupe records: both commit with the
    # caller's transaction or not at all.
    ids = enqueue_many(session, [_rendered(d.kind, d.contact, d.context, d.key, now, templates=templates) for d in digests])
    record_notices(session, digests, ids, now)
    for d in digests:
        result.rerouted += d.rerouted
        result.items[d.kind] += len(d.items)
        result.messages += d.key in ids
    return result


def _tell_lapsed(session: Session, plan: Any, wf: Any, lapsed: list[Any], now: Any, templates: Path | None) -> int:
    """Each school whose request lapsed is told so, once per request (its contacts at school level)."""
    codes = {r.school_code for r in lapsed}
    contacts = session.scalars(select(Contact).where(Contact.active, Contact.level == "school",
                                                     Contact.scope_code.in_(sorted(codes))).order_by(Contact.id)).all()
    rows = []
    for request in lapsed:
        for contact in (c for c in contacts if c.scope_code == request.school_code):
            context = {"kind": "lapse", "plan_title": plan.title, "recipient": {"name": contact.name},
                       "school_code": request.school_code, "stage_title": str(wf.stage(request.stage).title),
                       "now_stage_title": str(wf.stage(request.current_stage).title),
                       "due_date": request.due.isoformat(), "request_seq": request.seq}
            rows.append(_rendered("lapse", contact, context, f"lapse:c{contact.id}:{request.school_code}:{request.seq}",
                                  now, templates=templates))
    return len(enqueue_many(session, rows)) if rows else 0


def _rendered(kind: str, contact: Any, context: dict[str, Any], key: str, now: Any,
              attachment: tuple[str, bytes] | None = None, templates: Path | None = None) -> dict[str, object]:
    """The outbox row for one digest or bulletin to ``contact``, rendered in the contact's language
    (from the office's own templates where ``templates`` has one, in the bounded sandbox)."""
    template = "bulletin" if kind == "bulletin" else kind
    chat = contact.channel in ("dingtalk", "wecom", "feishu")

    def text(fmt: str) -> str:
        return render(template, contact.lang, fmt, context, override_dir=templates)

    return outgoing(
        dedupe_key=key, kind=kind, channel=contact.channel, address=contact.address,
        subject=text("subject").strip(),
        text=text("txt"),
        html=None if chat else text("html"),
        markdown=text("md") if chat or contact.channel == "file" else None,
        secret_ref=contact.secret_ref, contact_id=contact.id,
        attachment_name=attachment[0] if attachment else None, attachment=attachment[1] if attachment else None,
        now=now,
    )


def run_bulletins(session: Session, clock: Clock, plan_code: str | None = None, templates: Path | None = None) -> int:
    """One bulletin per office contact (province, city, county) per ISO week; returns messages queued."""
    plan = find_plan(session, plan_code)
    now = clock.now()
    year, week, period = bulletin_week(clock, plan)
    names = dict(session.execute(select(Region.code, Region.name)).all())
    contacts = office_contacts(session, plan)
    risk = _at_risk(session, clock, plan) if contacts else None
    rates = rate_columns(session, plan)
    queued = 0
    for contact in contacts:
        rows = ranked_regions(session, clock, plan, contact.scope_code)
        if risk is not None:  # the workflow warns early: the bulletin counts the schools at risk too
            threshold, forecasts = risk
            counts = {r.code: r.at_risk for r in schools_at_risk(
                session, clock, plan.code, region=contact.scope_code, threshold=threshold, forecasts=forecasts)}
            for row in rows:
                row["at_risk"] = counts.get(row["region_code"], 0)
        context = {"office": {"name": contact.name, "level": contact.level}, "plan_title": plan.title,
                   "period": period, "rows": rows,
                   # seed 002 (九) 各承训单位报到率、结业率……进行通报: the contractors with schools in the office's region
                   "contractors": contractor_ranking(session, clock, plan, school_clause_for(contact.scope_code),
                                                     scan_all=contact.level == "province"),
                   "rates": rates}
        xlsx = bulletin_workbook(context)
        # The plan is in the key: an office over schools of two plans gets each plan's bulletin.
        key = f"bulletin:{plan.code}:c{contact.id}:{year}-W{week:02d}"
        queued += len(enqueue_many(session, [_rendered(
            "bulletin", contact, context, key, now,
            (f"通报-{names.get(contact.scope_code, contact.scope_code)}-{year}W{week:02d}.xlsx", xlsx), templates)]))
    return queued


def _at_risk(session: Session, clock: Clock, plan: Any) -> tuple[float, list[Any]] | None:
    """The plan's forecasts and the lowest ``warn_at_risk`` of its workflow, or None when it sets none."""
    wf = workflow_for_version(session, plan.workflow_version_id)
    levels = [s.remind.warn_at_risk for s in wf.stages if s.remind and s.remind.warn_at_risk]
    if not levels:
        return None
    _, forecasts = forecast_plan(session, clock, plan.code)
    return min(levels), forecasts
