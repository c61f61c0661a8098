"""What the school page adds to engine.status.school_detail: the state and the deadline in words,
the teachers holding a gate back by name, the stage timeline, the reminders and escalations sent,
the facts the current gates need first, and whether this user may decide an extension."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import (
    Clock,
    Contact,
    NoticeItem,
    Notification,
    Plan,
    School,
    SchoolRun,
    SheetColumn,
    User,
    find_run,
    pending_requests,
    role_title,
    school_clause,
    stage_title,
    state_title,
    teachers_behind,
    tr,
)
from engine.forecast import DEFAULT_AT_RISK, school_forecast
from engine.workflow import Workflow, workflow_for_version

RESULT_WORDS = {"pass": ("合格", "pass"), "excellent": ("优秀", "excellent"), "fail": ("不合格", "fail")}
KIND_WORDS = {"reminder": ("到期提醒", "reminder"), "overdue": ("逾期提醒", "overdue notice"),
              "escalation": ("逐级督办", "escalation")}
LEVEL_WORDS = {"school": ("学校", "school"), "county": ("县级", "county"), "city": ("市级", "city"),
               "province": ("省级", "province")}
STATUS_WORDS = {"pending": ("待发送", "waiting"), "sent": ("已送达", "delivered"), "dead": ("发送失败", "failed")}


def _words(table: dict[str, tuple[str, str]], key: str | None) -> str:
    pair = table.get(key or "")
    return tr(*pair) if pair else (key or "")


def due_words(due: dict[str, Any] | None) -> str:
    """"剩余 12 天" / "今天到期" / "已逾期 112 天" — the deadline as an officer says it."""
    if not due:
        return tr("本阶段没有截止日期", "no deadline in this stage")
    if due["days_overdue"]:
        return tr(f"已逾期 {due['days_overdue']} 天", f"{due['days_overdue']} days overdue")
    if due["days_left"] == 0:
        return tr("今天到期", "due today")
    return tr(f"剩余 {due['days_left']} 天", f"{due['days_left']} days left")


def holdouts(session: Session, wf: Workflow, stage: str, code: str) -> list[dict[str, Any]]:
    """The teachers holding back the current stage's gates, with the gates in words."""
    titles = {g.id: str(g.title) for g in wf.stage(stage).gates}
    rows = teachers_behind(session, wf, stage, code)
    for r in rows:
        r["gate_titles"] = [titles[g] for g in r["gates"]]
        r["result_title"] = _words(RESULT_WORDS, r["evidence_result"]) if r["evidence_result"] else tr("未测评", "not assessed")
    return rows


def holdout_columns() -> list[SheetColumn]:
    return [SheetColumn(tr("平台账号", "Platform id"), 16, "@"), SheetColumn(tr("姓名", "Name"), 10),
            SheetColumn(tr("网络研修学时", "Online hours"), 12, "0.0"), SheetColumn(tr("校本实践学时", "Practice hours"), 12, "0.0"),
            SheetColumn(tr("已选能力点", "Points chosen"), 12), SheetColumn(tr("已交成果", "Evidence"), 10),
            SheetColumn(tr("测评结果", "Result"), 10), SheetColumn(tr("未达到的要求", "Holding back"), 50)]


def holdout_cells(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["platform_id"], r["name"], r["online_hours"], r["practice_hours"], r["points"] or "",
             r["evidence_count"], r["result_title"], "；".join(r["gate_titles"])] for r in rows]


def timeline(wf: Workflow, history: list[dict[str, Any]], current: str, due: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each stage the school has been in, in order: entered, left, and extensions granted while in it;
    the current stage with its due date. Built from the audit trail, the record of what happened."""
    out: list[dict[str, Any]] = []
    for e in history:
        to, frm = e.get("to_state"), e.get("from_state")
        if e["trigger"] in ("extend",) and out:
            out[-1]["extensions"].append(e["at_local"][:10])
            continue
        if not to or to == frm and e["trigger"] != "start":
            continue
        if out and out[-1]["left"] is None:
            out[-1]["left"] = e["at_local"][:10]
        out.append({"stage": to, "title": stage_title(wf, to), "entered": e["at_local"][:10], "left": None,
                    "extensions": [], "due": None, "how": e.get("trigger_title", "")})
    if out and out[-1]["stage"] == current and due:
        out[-1]["due"] = due["date"]
    return out


def notices(session: Session, run_id: int, tz: str) -> list[dict[str, Any]]:
    """Reminders, overdue notices and escalations queued for this school's run, newest first:
    when, to whom (level and contact), which channel, delivered or not."""
    q = (select(NoticeItem.kind, NoticeItem.level, NoticeItem.created_at, Notification.channel,
                Notification.status, Notification.sent_at, Contact.name)
         .join(Notification, Notification.id == NoticeItem.notification_id, isouter=True)
         .join(Contact, Contact.id == Notification.contact_id, isouter=True)
         .where(NoticeItem.run_id == run_id).order_by(NoticeItem.created_at.desc(), NoticeItem.id.desc()).limit(50))

    def local(at: datetime | None) -> str:
        return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if at else ""
    return [{"kind": kind, "kind_title": _words(KIND_WORDS, kind), "level": level, "level_title": _words(LEVEL_WORDS, level),
             "at": local(at), "channel": channel or "", "status": status or "", "status_title": _words(STATUS_WORDS, status),
             "sent_at": local(sent), "to": name or ""} for kind, level, at, channel, status, sent, name in session.execute(q)]


def facts_first(facts: list[dict[str, Any]], wf: Workflow, stage: str, user: User) -> list[dict[str, Any]]:
    """The facts the current stage's gates test first (marked), then the others; a supervisor,
    who only attests, is offered only what the current stage asks for (not 督导考核结果 while
    the school is still in practice)."""
    needed = {wf.metrics[g.metric].fact for g in wf.stage(stage).gates if wf.metrics[g.metric].kind == "fact"}
    for f in facts:
        f["needed"] = f["name"] in needed
    ordered = sorted(facts, key=lambda f: not f["needed"])
    return [f for f in ordered if f["needed"]] if user.role == "supervisor" else ordered


def may_decide(wf: Workflow, state: str, user: User) -> bool:
    """Whether the user's role may approve or refuse an extension (the roles of ``extend``)."""
    extend = next((t for t in wf.transitions if t.kind == "extend" and state in t.sources), None)
    return extend is not None and user.role in extend.roles


def enrich(session: Session, user: User, code: str, detail: dict[str, Any], facts: list[dict[str, Any]]) -> dict[str, Any]:
    run = find_run(session, code, detail["plan"])
    wf = workflow_for_version(session, run.workflow_version_id)
    plan = session.get(Plan, run.plan_id)
    tz = plan.timezone if plan else "Asia/Shanghai"
    detail["state_title"] = state_title(detail["school_state"])
    detail["due_words"] = due_words(detail["due"])
    detail["holdouts"] = holdouts(session, wf, detail["state"], code)
    detail["timeline"] = timeline(wf, detail["history"], detail["state"], detail["due"])
    detail["notices"] = notices(session, run.id, tz)
    detail["facts"] = facts_first(facts, wf, detail["state"], user)
    detail["may_decide"] = may_decide(wf, detail["state"], user)
    detail["role_title"] = role_title(user.role, wf)
    return detail


def extension_queue(session: Session, user: User, plan: Plan) -> list[dict[str, Any]]:
    """The plan's pending extension requests in the user's scope, oldest school code first, with
    whether the user may decide each (the offices ``extend`` names; never the requesting school)."""
    wf = workflow_for_version(session, plan.workflow_version_id)
    pending = pending_requests(session, plan.code, school_clause(user))
    if not pending:
        return []
    # Each school's name and the due date the request would move (what the office weighs it against).
    schools = {code: (name, due) for code, name, due in session.execute(
        select(School.code, School.name, SchoolRun.due_date).join(SchoolRun, SchoolRun.school_code == School.code)
        .where(SchoolRun.plan_id == plan.id, School.code.in_([p.school_code for p in pending])))}
    names = dict(session.execute(select(User.username, User.display_name)
                                 .where(User.username.in_({p.requested_by for p in pending}))).all())
    return [{"school_code": p.school_code, "school_name": schools[p.school_code][0], "stage": p.stage,
             "stage_title": stage_title(wf, p.stage), "current_due": schools[p.school_code][1], "due": p.due,
             "reason": p.reason,
             "requested_by": names.get(p.requested_by, p.requested_by), "may_decide": may_decide(wf, p.stage, user)}
            for p in pending]


def forecast(session: Session, clock: Clock, code: str, plan_code: str) -> dict[str, Any] | None:
    """预警 for the school page (issue 11): the chance of missing the stage's due date and the
    final deadline, when its gates should pass, and the teachers most at risk — or why there is
    no forecast yet (too little import history), never a guess."""
    found = school_forecast(session, clock, code, plan_code)
    if found is None:
        return None
    def pct(p: float | None) -> str:
        return "—" if p is None else f"{p:.0%}"
    return {"status": found.status, "reason": found.reason, "p_miss_due": pct(found.p_miss_due),
            "p_miss_final": pct(found.p_miss_final), "eta_p50": found.eta_p50, "eta_p90": found.eta_p90,
            "eta_beyond": found.eta_beyond, "high": (found.p_miss_due or 0) >= DEFAULT_AT_RISK,
            "teachers": [{"platform_id": t.platform_id, "name": t.name, "shortfall": t.shortfall,
                          "pace": t.pace, "needed_pace": t.needed_pace, "p_late": pct(t.p_late)}
                         for t in found.teachers[:20]]}
