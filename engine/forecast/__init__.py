"""Early warning (预警): which school runs will miss their due dates, when their gates will pass,
and which teachers are why — pure functions over plain data (``pace``, ``durations``, ``school``),
read from the database by ``data`` and composed per plan or region by ``api``.
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
from engine.forecast.pace import TeacherHistory, interval_rates, sample_paces
from engine.forecast.school import (
    RunInput,
    SchoolForecast,
    Settings,
    TeacherRisk,
    forecast_run,
    next_stages,
)

__all__ = [
    "DEFAULT_AT_RISK", "RegionRisk", "forecast_plan", "risk_of", "school_forecast", "schools_at_risk",
    "StageDurations", "remaining_days",
    "TeacherHistory", "interval_rates", "sample_paces",
    "RunInput", "SchoolForecast", "Settings", "TeacherRisk", "forecast_run", "next_stages",
]
