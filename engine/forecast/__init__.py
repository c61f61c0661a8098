"""Early warning (预警): which school runs will miss their due dates, when their gates will pass,
and which teachers are why — pure functions over plain data (``pace``, ``durations``, ``school``),
read from the database by ``data``, composed per plan or region by ``api``, and kept as each run's
stored risk by ``store``.
"""

from engine.forecast.api import (
    DEFAULT_AT_RISK,
    RegionRisk,
    forecast_plan,
    risk_of,
    school_forecast,
    schools_at_risk,
)
from engine.forecast.durations import StageDurations, remaining_days
from engine.forecast.pace import TeacherHistory, approximate_paces, interval_rates, sample_paces
from engine.forecast.school import (
    DEFAULT_SETTINGS,
    RunInput,
    SchoolForecast,
    Settings,
    TeacherRisk,
    forecast_run,
    forecast_runs,
    next_stages,
)
from engine.forecast.store import (
    StoredRisk,
    at_risk_clause,
    at_risk_counts,
    fresh_since,
    latest_import,
    run_risk,
    run_risks,
    store_risks,
)

__all__ = [
    "DEFAULT_AT_RISK", "RegionRisk", "forecast_plan", "risk_of", "school_forecast", "schools_at_risk",
    "StageDurations", "remaining_days",
    "TeacherHistory", "approximate_paces", "interval_rates", "sample_paces",
    "StoredRisk", "at_risk_clause", "at_risk_counts", "fresh_since", "latest_import", "run_risk", "run_risks", "store_risks",
    "RunInput", "SchoolForecast", "DEFAULT_SETTINGS", "Settings", "TeacherRisk", "forecast_run", "forecast_runs", "next_stages",
]
