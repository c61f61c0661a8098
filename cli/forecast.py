"""``rollout forecast``: which schools will miss their dates at the current pace, and who is why.

Thin: options → ``engine.forecast`` → a table (or JSON) and a summary per child region.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from cli.app import App, emit, json_option, pass_app, table
from cli.runs import plan_option
from engine import local_date, stage_title, tr
from engine.forecast import (
    DEFAULT_AT_RISK,
    SchoolForecast,
    Settings,
    forecast_plan,
    risk_of,
    schools_at_risk,
    store_risks,
)
from engine.workflow import workflow_for_version


def _pct(p: float | None) -> str:
    return "-" if p is None else f"{p * 100:.0f}%"


def row_of(f: SchoolForecast) -> dict[str, Any]:
    data = asdict(f)
    data["teachers"] = [asdict(t) for t in f.teachers]
    return data


@click.command("forecast")
@plan_option
@click.option("--region", "region", default=None, help="Only schools in this province, city or county (6-digit code).")
@click.option("--at-risk", "at_risk", type=click.FloatRange(0, 1), default=None,
              help=f"Only schools at least this likely to miss (the region summary counts at it; default {DEFAULT_AT_RISK}).")
@click.option("--samples", type=click.IntRange(50, 100_000), default=Settings().samples, show_default=True,
              help="Monte Carlo samples per school.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (the same seed gives the same numbers).")
@click.option("--method", type=click.Choice(["bootstrap", "approximate"]), default=Settings().method, show_default=True,
              help="Teachers' paces: the Bayesian bootstrap, or its two moments (one draw each; ~2.5× faster).")
@click.option("--store", "store", is_flag=True,
              help="Keep each school's risk for the dashboard (replaces what the sweep stored).")
@json_option
@pass_app
def forecast(app: App, plan_code: str | None, region: str | None, at_risk: float | None, samples: int, seed: int,
             method: str, store: bool, as_json: bool) -> None:
    """预警：按当前进度预测哪些学校将逾期、哪些教师拖后腿 / forecast who will miss the deadline."""
    settings = Settings(samples=samples, seed=seed, method=method)
    threshold = DEFAULT_AT_RISK if at_risk is None else at_risk
    with app.sessions() as session:
        plan, found = forecast_plan(session, app.clock, plan_code, region=region, settings=settings)
        regions = schools_at_risk(session, app.clock, plan.code, region=region, threshold=threshold, forecasts=found)
        wf = workflow_for_version(session, plan.workflow_version_id)
        if store:
            now = app.clock.now()
            store_risks(session, plan.id, found, now, local_date(now, plan.timezone), settings, "cli")
            session.commit()
    shown = [f for f in found if at_risk is None or (risk_of(f) or 0.0) >= at_risk]
    shown.sort(key=lambda f: (-(risk_of(f) or -1.0), f.school_code))
    data = {"plan": plan.code, "threshold": threshold, "schools": [row_of(f) for f in shown],
            "regions": [r.as_dict() for r in regions]}
    emit(data, as_json, lambda: _text(shown, regions, wf))


def _text(shown: list[SchoolForecast], regions: list[Any], wf: Any) -> str:
    beyond = tr("按当前进度无法达成", "not at this pace")
    rows = [[f.school_code, stage_title(wf, f.stage), f.due_date or "-", _pct(f.p_miss_due), _pct(f.p_miss_final),
             f.eta_p50 or (beyond if f.eta_beyond else "-"), f.eta_p90 or (beyond if f.eta_beyond else "-"),
             f.teachers_at_risk, f.reason or ""]
            for f in shown]
    schools = table([tr("学校标识码", "school_code"), tr("阶段", "stage"), tr("截止日期", "due_date"),
                     tr("逾期概率", "p_miss_due"), tr("误最终期限概率", "p_miss_final"), tr("预计达成P50", "eta_p50"),
                     tr("预计达成P90", "eta_p90"), tr("风险教师", "teachers_at_risk"), tr("说明", "note")], rows)
    summary = table([tr("地区", "region"), tr("学校", "schools"), tr("有风险", "at risk"), tr("无历史", "no history")],
                    [[f"{r.code} {r.name}", r.schools, r.at_risk, r.no_history] for r in regions])
    return f"{schools}\n\n{summary}"


commands = [forecast]
