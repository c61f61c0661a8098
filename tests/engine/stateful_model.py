"""An independent model of the documented rules, the oracle of tests/engine/test_engine_stateful.py.

Written from workflows/whole-school-2.0.yaml and docs/workflow-files.md, not from the engine: no
import of engine code that decides anything (no gate, deadline, workflow or calendar module). It
is deliberately small and literal — the shipped workflow's stages, gates and transitions as plain
tables, due dates counted Monday–Friday (no official calendar is loaded in the test), the
builders' plan (tests/engine/builders.py: batches b1/b2, final deadline 2022-11-30, extension
cap 2022-12-31). When the engine and this model disagree, one of them has the rule wrong.

To add a step (a plan edit, a workflow migration), give ``Model`` a method that applies the
documented effect to ``SchoolModel`` and the chain, and call it from the state machine's rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

FINAL = date(2022, 11, 30)
CAP = date(2022, 12, 31)
TERMINAL, HOLD = {"done"}, {"suspended"}
WORKING = {"pilot", "planning", "online_study", "practice", "assessment", "supervision"}

# stage → (gate id, test over the school's facts and per-teacher data), in the file's order
GATES: dict[str, list[tuple[str, Any]]] = {
    "pilot": [("pilot_summary", lambda f, t: _fact(f, "pilot_summary_filed", 1))],
    "planning": [("plan_filed", lambda f, t: _fact(f, "plan_filed", 1)),
                 ("team_formed", lambda f, t: _fact(f, "team_members", 3))],
    # share of teachers ≥ 100 %: every teacher, and no teachers is no data (a failing gate)
    "online_study": [("online_25h", lambda f, t: _every(t, lambda x: x["online_hours"] >= 25)),
                     ("points_chosen", lambda f, t: _every(t, lambda x: x["points_count"] >= 3))],
    "practice": [("practice_25h", lambda f, t: _every(t, lambda x: x["practice_hours"] >= 25)),
                 ("evidence_submitted", lambda f, t: _every(
                     t, lambda x: x["points_count"] >= 3 and x["evidence_count"] >= 3))],
    "assessment": [("results_entered", lambda f, t: _fact(f, "assessment_entered", 1)),
                   ("county_spot_check", lambda f, t: _fact(f, "county_spot_check_done", 1))],
    "supervision": [("supervision_passed", lambda f, t: _fact(f, "supervision_result", 1))],
}
NEXT = {"pilot": "planning", "planning": "online_study", "online_study": "practice", "practice": "assessment",
        "assessment": "supervision", "supervision": "done"}
AUTO_FROM = {"planning", "online_study", "practice", "assessment", "supervision"}  # pilot's advance is manual
BACK = {"online_study": "planning", "practice": "online_study", "assessment": "practice", "supervision": "assessment"}
OFFICES = ("county_office", "city_office", "province_office")
ROLES = {"advance": ("county_office",), "return_for_rework": ("county_office", "city_office"),
         "suspend": OFFICES, "resume": OFFICES, "extend": OFFICES, "override": ("province_office", "city_office")}
REASON_REQUIRED = {"return_for_rework", "suspend", "extend", "override"}
# due rules: a date, or N working days after stage entry
DUE_RULE: dict[str, date | int] = {"pilot": date(2021, 12, 31), "planning": 30, "online_study": 90,
                                   "practice": date(2022, 8, 31), "assessment": 20, "supervision": date(2022, 11, 30)}
# What finishing a stage's work means, in the terms of its gates: facts to record, teacher data to set.
WORK: dict[str, list[tuple[str, str, float]]] = {
    "pilot": [("fact", "pilot_summary_filed", 1)],
    "planning": [("fact", "plan_filed", 1), ("fact", "team_members", 4)],
    "online_study": [("teachers", "online_hours", 30), ("teachers", "points_count", 3)],
    "practice": [("teachers", "practice_hours", 30), ("teachers", "points_count", 3), ("teachers", "evidence_count", 3)],
    "assessment": [("fact", "assessment_entered", 1), ("fact", "county_spot_check_done", 1)],
    "supervision": [("fact", "supervision_result", 1)],
}
# A fact belongs to the first stage whose gate tests it. Recorded while the school is still in an
# earlier stage it is refused — except the supervision result, which process supervision may
# record early: kept, but it opens the gate only when recorded in (or after) its stage
# (workflows/whole-school-2.0.yaml ``before_stage: wait``; issue 14 bug 4).
ORDER = ["pilot", "planning", "online_study", "practice", "assessment", "supervision", "done"]
FACT_STAGE = {"pilot_summary_filed": "pilot", "plan_filed": "planning", "team_members": "planning",
              "assessment_entered": "assessment", "county_spot_check_done": "assessment",
              "supervision_result": "supervision"}
WAIT = {"supervision_result"}


def _fact(facts: dict[str, float], name: str, at_least: float) -> bool:
    return name in facts and facts[name] >= at_least


def _every(teachers: list[dict[str, float]], test: Any) -> bool:
    return bool(teachers) and all(test(x) for x in teachers)


def working_days_after(start: date, n: int) -> date:
    """The n-th Monday–Friday strictly after ``start``."""
    day = start
    while n:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


@dataclass
class SchoolModel:
    code: str
    state: str
    batch_start: date
    batch_deadlines: dict[str, date]
    stage_entered: date
    previous: str | None = None
    facts: dict[str, float] = field(default_factory=dict)
    teachers: list[dict[str, float]] = field(default_factory=list)
    extensions: dict[str, date] = field(default_factory=dict)  # stage → approved due date
    chain: list[tuple[str, str | None, str]] = field(default_factory=list)  # (trigger, from, to)
    entered_at: Any = None  # the instant the school entered its current stage (None: at the start)
    recorded_at: dict[str, Any] = field(default_factory=dict)  # fact → the instant it was last written

    def before(self, stage: str) -> bool:
        """Is the school (or, while suspended, the stage it was suspended in) before ``stage``?"""
        here = self.previous if self.state in HOLD else self.state
        return here in ORDER and ORDER.index(here) < ORDER.index(stage)

    def counted(self) -> dict[str, float]:
        """The facts the gates read: an early ``wait`` fact counts only once re-recorded in its stage."""
        out = {}
        for name, value in self.facts.items():
            stage = FACT_STAGE.get(name)
            if name in WAIT and stage and (self.before(stage) or (
                    self.state == stage and self.entered_at is not None and self.recorded_at[name] < self.entered_at)):
                continue
            out[name] = value
        return out

    def failing(self) -> list[str]:
        facts = self.counted()
        return [gate for gate, test in GATES.get(self.state, []) if not test(facts, self.teachers)]

    def blocked(self) -> bool:
        return bool(GATES.get(self.state)) and bool(self.failing())

    def due(self) -> tuple[date, str] | None:
        """Extension > batch date > workflow rule (capped by the final deadline); none when parked or done."""
        if self.state in TERMINAL | HOLD:
            return None
        if self.state in self.extensions:
            return self.extensions[self.state], "extension"
        if self.state in self.batch_deadlines:
            return self.batch_deadlines[self.state], "batch"
        rule = DUE_RULE[self.state]
        got = rule if isinstance(rule, date) else working_days_after(self.stage_entered, rule)
        return (FINAL, "final") if got > FINAL else (got, "workflow")


class Model:
    """The schools of interest and what each documented action does to them."""

    def __init__(self, schools: dict[str, SchoolModel]) -> None:
        self.schools = schools
        self.now: Any = None  # the harness sets the clock's instant before each step

    def fire(self, code: str, trigger: str, role: str, reason: str | None, due: date, today: date,
             system: str) -> bool:
        """Apply one transition as the documented rules say; False when it must be refused."""
        s = self.schools[code]
        target = self._target(s, trigger)
        if target is None:
            return False  # no such trigger from this stage
        auto = trigger == "advance" and s.state in AUTO_FROM
        if role not in ROLES[trigger] and not (role == system and auto):
            return False
        if trigger in REASON_REQUIRED and not (reason and reason.strip()):
            return False
        if today < s.batch_start:
            return False
        if trigger == "advance" and s.failing():
            return False
        if trigger == "extend":
            if due > CAP or due < today:
                return False
            s.extensions[s.state] = due
            s.chain.append(("extend", s.state, s.state))
            return True
        self._move(s, trigger, target, today)
        return True

    def advance_all(self, role: str, today: date, system: str) -> None:
        """Bulk advance: every started school whose stage gates pass, by the advances ``role`` may fire."""
        for s in self.schools.values():
            if s.state not in NEXT or today < s.batch_start or s.failing():
                continue
            if role in ROLES["advance"] or (role == system and s.state in AUTO_FROM):
                self._move(s, "advance", NEXT[s.state], today)

    def record_fact(self, code: str, name: str, value: float) -> bool:
        """Record a fact as documented; False when it must be refused (a later stage's, not ``wait``)."""
        s = self.schools[code]
        stage = FACT_STAGE.get(name)
        if stage and s.before(stage) and name not in WAIT:
            return False
        waiting = name in WAIT and s.state == stage and name in s.recorded_at and s.entered_at is not None \
            and s.recorded_at[name] < s.entered_at
        if s.facts.get(name) == value and not waiting:
            return True  # unchanged: nothing recorded
        s.facts[name] = value
        s.recorded_at[name] = self.now
        s.chain.append((f"fact:{name}", s.state, s.state))
        return True

    def set_teachers(self, code: str, column: str, value: float) -> None:
        for t in self.schools[code].teachers:
            t[column] = value

    @staticmethod
    def _target(s: SchoolModel, trigger: str) -> str | None:
        if trigger == "advance":
            return NEXT.get(s.state)
        if trigger == "return_for_rework":
            return BACK.get(s.state)
        if trigger in ("suspend", "extend"):
            return ("suspended" if trigger == "suspend" else s.state) if s.state in WORKING else None
        if trigger == "resume":
            return s.previous if s.state in HOLD else None
        if trigger == "override":
            return "done" if s.state in WORKING else None
        return None  # unknown triggers

    def _move(self, s: SchoolModel, trigger: str, target: str, today: date) -> None:
        s.chain.append((trigger, s.state, target))
        if trigger == "suspend":
            s.previous = s.state
        elif trigger != "resume":
            # time suspended is not extra time: suspend and resume keep the stage entry
            s.stage_entered = today
            s.entered_at = self.now
        s.state = target
