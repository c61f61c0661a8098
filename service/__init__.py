"""The service layer: what composes the engine and notifications into the office's daily work.

The sweep (auto-advance, then queue what is due), the weekly bulletins, and the scheduler that
runs them with dispatch on a timetable — with exactly one scheduler per database (``leader``).
Above ``engine`` and ``notifications``, below ``cli`` and ``web``.
"""

from service.leader import SchedulerAlreadyRunning
from service.scheduler import (
    ScheduleError,
    Settings,
    bulletin_trigger,
    parse_every,
    run_once,
    serve,
    status,
)
from service.sweep import SweepResult, run_bulletins, run_sweep

__all__ = [
    "SweepResult", "run_bulletins", "run_sweep",
    "ScheduleError", "SchedulerAlreadyRunning", "Settings", "bulletin_trigger", "parse_every", "run_once",
    "serve", "status",
]
