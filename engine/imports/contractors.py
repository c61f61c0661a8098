"""Which contractor (承训单位) trains which school in a plan: seed 002 二 "通过公开招标,遴选确定……8个
单位承办本项目", with its attachment 2 "承担单位分配表" assigning the schools.

A file of 学校标识码 and 承训单位 (CSV/XLSX), all or nothing with every bad row listed; each school whose
contractor changes gets a ``contractor_assign`` event on its chain (who, when, old and new), so the
assignment is on the record like everything that decides who answers for a school. Importing the
same file again changes nothing. The contractor is stored on the school's run (one plan, one
contractor per school) for one decision over a contractor's schools and for views by contractor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit.chain import EventDraft, append_events, run_chain
from engine.clock import Clock
from engine.errors import NotFound
from engine.i18n import tr
from engine.imports.cells import school_code_cell
from engine.imports.staging import Problems, duplicate, fold, missing
from engine.imports.tabular import open_table
from engine.models import Plan, SchoolRun
from engine.text import clean_line

ASSIGN = "contractor_assign"
FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("学校标识码", "学校代码", "学校编码", "school_code", "code"),
    "contractor": ("承训单位", "承办单位", "承担单位", "培训机构", "contractor"),
}


@dataclass(frozen=True)
class ContractorResult:
    source: str
    rows: int
    changed: int
    unchanged: int
    contractors: dict[str, int]  # contractor → schools, after the import


def _plan(session: Session, code: str | None) -> Plan:
    plans = session.scalars(select(Plan).where(Plan.code == code) if code else select(Plan)).all()
    if len(plans) != 1:
        raise NotFound(tr(f"没有计划 {code}" if code else "请用 --plan 指定计划（现有计划数不为 1）",
                          f"no plan {code}" if code else "name the plan with --plan (there is not exactly one plan)"))
    return plans[0]


def import_contractors(session: Session, clock: Clock, path: str | Path, *, actor: str, role: str,
                       plan_code: str | None = None, source: str | None = None) -> ContractorResult:
    """Assign the file's schools to their contractors in the plan; raises ImportFileError, writing
    nothing, if any row is wrong."""
    plan = _plan(session, plan_code)
    problems = Problems(source or str(path))
    runs = {r.school_code: r for r in session.scalars(select(SchoolRun).where(SchoolRun.plan_id == plan.id))}
    wanted: dict[str, tuple[int, str]] = {}
    with open_table(path, FIELDS, ("code", "contractor"), problems.source) as table:
        cols = table.columns
        for number, cells in table:
            code = school_code_cell(cells, cols, number, problems)
            if code is None:
                continue
            if code not in runs:
                problems.add(number, cols["code"], tr(f"学校 {code} 不在计划 {plan.code} 中", f"school {code} is not in plan {plan.code}"))
                continue
            name = clean_line(fold(cells["contractor"]), "", 10**6)
            if not name:
                problems.add(number, cols["contractor"], missing("承训单位", "contractor"))
                continue
            if len(name) > 100:
                problems.add(number, cols["contractor"], tr("承训单位名称超过 100 个字", "contractor name longer than 100 characters"))
                continue
            if code in wanted:
                problems.add(number, cols["code"], duplicate(code, wanted[code][0]))
                continue
            wanted[code] = (number, name)
    problems.raise_if_any()
    now = clock.now()
    drafts = []
    for code, (_, name) in wanted.items():
        run = runs[code]
        if run.contractor == name:
            continue
        drafts.append(EventDraft(chain=run_chain(run.id), at=now, actor=actor, role=role, trigger=ASSIGN,
                                 plan_id=plan.id, run_id=run.id, school_code=code, from_state=run.state,
                                 to_state=run.state, reason=tr(f"承训单位：{name}", f"contractor: {name}"),
                                 gates=[{"old": run.contractor, "new": name}]))
        run.contractor = name  # not a change of stage: the optimistic-lock version stays
    session.flush()
    append_events(session, drafts)
    counts: dict[str, int] = {}
    for run in runs.values():
        if run.contractor:
            counts[run.contractor] = counts.get(run.contractor, 0) + 1
    return ContractorResult(problems.source, len(wanted), len(drafts), len(wanted) - len(drafts), counts)
