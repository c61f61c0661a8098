"""The in-memory form of a workflow file: plain frozen data, no database, no I/O.

``engine.workflow.loader`` builds these from YAML (validating against
``engine/workflow.schema.json``); everything else in the engine reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from engine.i18n import language

# Teacher-record fields a metric's ``where`` may test, and the column each maps to (engine.metrics).
TEACHER_FIELDS = (
    "online_hours",
    "practice_hours",
    "total_hours",
    "points_count",
    "evidence_count",
    "evidence_result",
)
NUMERIC_OPS = (">=", ">", "<=", "<", "==", "!=")
EARLY_FACTS = ("refuse", "wait", "allow")
METRIC_KINDS = ("share_of_teachers", "count_of_teachers", "fact")
EXTENSION_COVERS = ("stage", "remaining", "remaining_to_cap")
TRANSITION_KINDS = ("advance", "return", "suspend", "resume", "extend", "override")
DUE_KINDS = ("date", "after_stage_entry", "after_batch_start")
ESCALATION_LEVELS = ("school", "county", "city", "province")
PREVIOUS = "@previous"


@dataclass(frozen=True)
class Text:
    """A title in both languages."""

    zh: str
    en: str

    def __str__(self) -> str:
        return self.zh if language() == "zh" else self.en


@dataclass(frozen=True)
class Condition:
    """A test on one teacher record, e.g. ``online_hours >= 25``."""

    field: str
    op: str  # one of NUMERIC_OPS, or "in"
    value: float | tuple[str, ...]


@dataclass(frozen=True)
class Metric:
    """A per-school number computed in SQL: a share or count of teachers, or a school fact."""

    id: str
    title: Text
    kind: str  # one of METRIC_KINDS
    where: tuple[Condition, ...] = ()
    fact: str | None = None
    unit: str = ""  # display unit: "share" shows as %, else e.g. "人", "h"
    # fact metrics: who may record the fact (the file's ``roles``, or the default the loader
    # resolved, see engine.workflow.checks.default_fact_roles); empty for teacher metrics.
    roles: tuple[str, ...] = ()
    # fact metrics: the values that may be recorded (the file's ``range``, or the loader's default)
    low: float = 0.0
    high: float = 1_000_000.0
    # fact metrics: a value recorded while the school is in a stage before the fact's stage (the
    # first stage whose gate tests it) is refused (refuse, the default), kept but not counted until
    # the school is in that stage (wait), or counted at once (allow). Issue 14: a supervision
    # result entered during planning passed supervision months later without anyone seeing it.
    before_stage: str = "refuse"


@dataclass(frozen=True)
class Gate:
    """A stage-exit condition: ``metric op value``, explainable as actual vs required."""

    id: str
    title: Text
    metric: str
    op: str
    value: float
    source: str | None = None  # the seed rule it comes from


@dataclass(frozen=True)
class DueRule:
    """When a stage must be finished: a fixed local date, or N (working) days after an anchor."""

    kind: str  # one of DUE_KINDS
    date: date | None = None
    amount: int = 0
    working_days: bool = False


@dataclass(frozen=True)
class EscalationStep:
    after_days: int  # days overdue at which this level is told
    to: str  # one of ESCALATION_LEVELS


@dataclass(frozen=True)
class ReminderRule:
    before_days: tuple[int, ...] = ()  # reminders this many days before the due date
    escalate: tuple[EscalationStep, ...] = ()
    repeat_days: int | None = None  # re-send an unresolved overdue item every N days


@dataclass(frozen=True)
class Stage:
    id: str
    title: Text
    gates: tuple[Gate, ...] = ()
    due: DueRule | None = None
    remind: ReminderRule | None = None
    terminal: bool = False  # the run is finished here
    hold: bool = False  # a parking state (suspended): no deadlines, no reminders


@dataclass(frozen=True)
class Transition:
    trigger: str
    kind: str  # one of TRANSITION_KINDS
    sources: tuple[str, ...]
    dest: str | None  # a stage id, PREVIOUS for resume, None for extend (stays put)
    roles: tuple[str, ...]
    title: Text
    auto: bool = False  # fire by itself (sweep, bulk advance) once the source stage's gates pass
    reason_required: bool = False
    # extend only: what an approved extension moves — this stage, or every later stage too, due
    # by the new date (remaining) or by the plan's cap (remaining_to_cap). Seed 002 "获批后最迟于
    # 2021年底前完成" is remaining_to_cap.
    covers: str = "stage"


@dataclass(frozen=True)
class Workflow:
    id: str
    version: str
    title: Text
    initial: str
    roles: dict[str, Text]
    metrics: dict[str, Metric]
    stages: tuple[Stage, ...]
    transitions: tuple[Transition, ...]
    source_name: str = ""
    content_hash: str = ""
    description: str = ""
    # Stages besides ``initial`` where a plan's batch may start (e.g. pilot schools start at pilot).
    entry_stages: tuple[str, ...] = ()
    _by_id: dict[str, Stage] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({s.id: s for s in self.stages})

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def stage(self, stage_id: str) -> Stage:
        return self._by_id[stage_id]

    def has_stage(self, stage_id: str) -> bool:
        return stage_id in self._by_id

    def transition_for(self, trigger: str, state: str) -> Transition | None:
        """The transition ``trigger`` fires from ``state`` ((trigger, source) pairs are unique)."""
        return next((t for t in self.transitions if t.trigger == trigger and state in t.sources), None)

    def triggers(self) -> list[str]:
        return list(dict.fromkeys(t.trigger for t in self.transitions))

    def transitions_from(self, state: str) -> list[Transition]:
        return [t for t in self.transitions if state in t.sources]

    def fact_roles(self, fact: str) -> tuple[str, ...]:
        """The roles that may record ``fact`` (several metrics may test one fact: any of them grants)."""
        roles = (r for m in self.metrics.values() if m.kind == "fact" and m.fact == fact for r in m.roles)
        return tuple(dict.fromkeys(roles))

    def fact_stage(self, fact: str) -> str | None:
        """The first stage (file order) with a gate on ``fact``: the stage the fact belongs to."""
        metrics = {m.id for m in self.metrics.values() if m.kind == "fact" and m.fact == fact}
        return next((s.id for s in self.stages if any(g.metric in metrics for g in s.gates)), None)

    def early_rule(self, fact: str) -> str:
        """What happens to ``fact`` recorded before its stage (the first metric naming it decides)."""
        return next((m.before_stage for m in self.metrics.values() if m.kind == "fact" and m.fact == fact), "refuse")

    def before(self, state: str, previous: str | None, stage: str) -> bool:
        """Whether a school in ``state`` (a hold stage counts as the stage it came from) has not yet
        reached ``stage`` in file order."""
        here = previous if self.has_stage(state) and self.stage(state).hold else state
        order = [s.id for s in self.stages]
        if here is None or here not in order or stage not in order:
            return False
        return order.index(here) < order.index(stage)

    def facts_for_role(self, role: str) -> list[Metric]:
        """One fact metric per fact ``role`` may record, in file order (what a form offers)."""
        seen: dict[str, Metric] = {}
        for m in self.metrics.values():
            if m.kind == "fact" and m.fact and m.fact not in seen and role in self.fact_roles(m.fact):
                seen[m.fact] = m
        return list(seen.values())

    def auto_advance_from(self, state: str) -> Transition | None:
        return next(
            (t for t in self.transitions_from(state) if t.auto and t.kind == "advance"), None
        )
