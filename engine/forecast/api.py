"""What the CLI, the sweep, the bulletin and (later) the dashboard call: a plan's or region's
forecasts, one school's, and the schools at risk per child region.

Each reads its inputs once (``engine.forecast.data``) and runs the pure forecast per school
(``engine.forecast.school``). A school is *at risk* when its probability of missing its current
stage's due date or the final deadline reaches the threshold (default 0.7, the workflow's
``warn_at_risk`` where the sweep asks).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import load_calendar
from engine.calendar.memo import remembered
from engine.calendar.workdays import WorkCalendar
from engine.clock import Clock
from engine.deadline import local_date
from engine.errors import NotFound
from engine.forecast.cores import workers_for
from engine.forecast.data import open_runs, run_inputs, stage_durations
from engine.forecast.durations import StageDurations
from engine.forecast.pace import TeacherSums
from engine.forecast.school import CHUNK, DEFAULT_SETTINGS, SchoolForecast, Settings, forecast_runs
from engine.forecast.sums import name_shown
from engine.i18n import tr
from engine.models import AuditEvent, Plan, Region, School
from engine.plan import find_plan
from engine.run_status import ensure_current
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version

DEFAULT_AT_RISK = 0.7


def risk_of(f: SchoolForecast) -> float | None:
    """The larger of the two probabilities a forecast gives (None: it gives neither)."""
    known = [p for p in (f.p_miss_due, f.p_miss_final) if p is not None]
    return max(known) if known else None


def forecast_plan(session: Session, clock: Clock, plan_code: str | None = None, *, region: str | None = None,
                  school: str | None = None, settings: Settings = DEFAULT_SETTINGS) -> tuple[Plan, list[SchoolForecast]]:
    """Every open run of the plan (optionally within a region, or one school), forecast."""
    plan = find_plan(session, plan_code)
    ensure_current(session, plan.id)
    wf = workflow_for_version(session, plan.workflow_version_id)
    calendar = remembered(load_calendar(session))
    now = clock.now()
    today = local_date(now, plan.timezone)
    runs = open_runs(session, plan, wf, now, region=region, school=school)
    workers = workers_for(session, settings.workers) if len(runs) > 2 * CHUNK else 1  # a city's runs: one core
    durations: dict[str, StageDurations] = {}
    inputs = run_inputs(session, plan, wf, runs, today, calendar, settings.window, settings.method, workers,
                        also=lambda: durations.update(recent_durations(session, plan, wf, now, today, calendar)))
    # Forecasts from sums name their teachers by database id: the shown ones' names are read for
    # each chunk of forecasts as it arrives, while the workers forecast the next.
    named = any(isinstance(r.history, TeacherSums) for r in inputs)
    found = forecast_runs(inputs, wf, calendar, durations, settings, workers,
                          then=(lambda part: name_shown(session, part)) if named else None)
    return plan, found


_DURATIONS: OrderedDict[tuple[Any, ...], tuple[datetime, tuple[int, str], dict[str, StageDurations]]] = OrderedDict()
REMEMBERED = 8
# How long a read of the stays may serve after the trail has grown. In a working province the trail
# grows every minute, and reading it again costs 1.1 s at 50,000 schools — on a page that must
# answer in 50 ms. One more stay among thousands hardly moves a Kaplan–Meier curve.
DURATIONS_FRESH = timedelta(minutes=15)


def recent_durations(session: Session, plan: Plan, wf: Workflow, now: datetime, today: date,
                     calendar: WorkCalendar) -> dict[str, StageDurations]:
    """``stage_durations``, remembered for the day while the audit trail is unchanged, and for
    ``DURATIONS_FRESH`` after it has grown.

    They are every school of the plan's stays in each stage, read from the whole trail: 0.3–1.1 s
    at 50,000 schools, for a school page that must answer in 50 ms. Every change of stage is an
    audit event, so the newest event up to ``now`` (id and hash: another database never matches
    both) says whether the trail is the one they were read from; later events are not read."""
    newest = session.execute(select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.at <= now)
                             .order_by(AuditEvent.id.desc()).limit(1)).first()
    if newest is None:
        return stage_durations(session, plan, wf, now, today, calendar)
    key = (str(session.get_bind().engine.url), plan.id, wf.key, today, calendar.fingerprint)
    trail = (int(newest.id), str(newest.hash))
    kept = _DURATIONS.get(key)
    if kept is not None and (kept[1] == trail or kept[0] <= now < kept[0] + DURATIONS_FRESH):
        _DURATIONS.move_to_end(key)
        return kept[2]
    found = stage_durations(session, plan, wf, now, today, calendar)
    _DURATIONS[key] = (now, trail, found)
    while len(_DURATIONS) > REMEMBERED:
        _DURATIONS.popitem(last=False)
    return found


def school_forecast(session: Session, clock: Clock, school_code: str, plan_code: str | None = None,
                    settings: Settings = DEFAULT_SETTINGS) -> SchoolForecast | None:
    """One school's forecast for its page (None when its run is finished, parked or not started)."""
    _, found = forecast_plan(session, clock, plan_code, school=school_code, settings=settings)
    return found[0] if found else None


@dataclass
class RegionRisk:
    """One child region's line of the summary: schools forecast, at risk, without history."""

    code: str
    name: str
    schools: int = 0
    at_risk: int = 0
    no_history: int = 0
    school_codes: list[str] = field(default_factory=list)  # the at-risk ones: what a drill-down lists

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "schools": self.schools, "at_risk": self.at_risk,
                "no_history": self.no_history, "school_codes": self.school_codes}


def schools_at_risk(session: Session, clock: Clock, plan_code: str | None = None, *, region: str | None = None,
                    threshold: float = DEFAULT_AT_RISK, settings: Settings = DEFAULT_SETTINGS,
                    forecasts: list[SchoolForecast] | None = None) -> list[RegionRisk]:
    """Per child region of ``region`` (the province's cities, a city's counties; the plan's region
    when none is named): schools forecast, schools at risk at ``threshold``, schools without history."""
    if forecasts is None:
        _, forecasts = forecast_plan(session, clock, plan_code, region=region, settings=settings)
    plan = find_plan(session, plan_code)
    region = region or plan.region_code
    level = session.scalar(select(Region.level).where(Region.code == region)) if region else None
    if region and level is None:
        raise NotFound(tr(f"行政区划 {region} 不存在", f"no region {region}"))
    child = _child_of(session, level)
    names = dict(session.execute(select(Region.code, Region.name)).all())
    rows: dict[str, RegionRisk] = {}
    for f in forecasts:
        code = child.get(f.school_code, "")
        row = rows.setdefault(code, RegionRisk(code, names.get(code, code)))
        row.schools += 1
        risk = risk_of(f)
        if f.status == "no_history":
            row.no_history += 1
        elif risk is not None and risk >= threshold:
            row.at_risk += 1
            row.school_codes.append(f.school_code)
    return sorted(rows.values(), key=lambda r: (-r.at_risk, r.code))


def _child_of(session: Session, level: str | None) -> dict[str, str]:
    """School code → the child region the summary groups it under."""
    column = School.city_code if level in (None, "province") else School.county_code
    return {code: child or "" for code, child in session.execute(select(School.code, column))}
