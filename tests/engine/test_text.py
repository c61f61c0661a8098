"""Free text is capped and cleaned wherever it enters (issue 12, Medium 7).

A 20,000,000-character note through the facts API was accepted and, being append-only, can never
be removed (190 MB database, 21 MB audit page); terminal escapes in a reason reach every officer
who runs ``rollout audit list``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import TextRefused, TransitionRefused
from engine.extension import request_extension
from engine.facts import set_fact
from engine.runs import Actor, fire
from engine.text import MAX_NOTE, MAX_REASON, clean_line, clean_text
from tests.engine.builders import COUNTY_OFFICER, EARLY, SCHOOL_ADMIN, events_of, seed_with_plan

SCHOOL = EARLY[0]
ESCAPES = "\x1b[2J\x1b[31m红色\x1b[0m\x1b]0;owned\x07\u202etxt.exe\u202c\x00\x08"


@pytest.mark.parametrize("raw,clean", [
    (ESCAPES, "红色txt.exe"), ("第一行\r\n第二行\t完", "第一行\n第二行 完"), ("  ", None), (None, None),
    ("\ud800孤立代理", "孤立代理"),
])
def test_paragraphs(raw: str | None, clean: str | None) -> None:
    assert clean_text(raw, "理由") == clean


def test_lines_and_caps() -> None:
    assert clean_line(" 沂源县\n实验小学\x1b[1m ", "名称") == "沂源县 实验小学"
    with pytest.raises(TextRefused, match="最多 200 个字符"):
        clean_line("校" * 201, "名称")
    assert clean_text("x" * MAX_REASON, "理由") == "x" * MAX_REASON


@pytest.fixture
def planned(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
    return factory


def test_engine_entry_points_clean_and_cap(planned: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(planned) as s:
        fire(s, clock, school_code=SCHOOL, trigger="suspend", actor=Actor("王\x1b[8m主任", "county_office"), reason=ESCAPES)
        set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER, note="\x1b[31m四人\x1b[0m")
    with transaction(planned) as s:
        suspend, fact = events_of(s, SCHOOL)[-2:]
    assert (suspend.actor, suspend.reason) == ("王主任", "红色txt.exe")
    assert fact.reason == "四人"
    for too_long in (
        lambda s: fire(s, clock, school_code=SCHOOL, trigger="resume", actor=COUNTY_OFFICER, reason="长" * (MAX_REASON + 1)),
        lambda s: set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER, note="注" * (MAX_NOTE + 1)),
        lambda s: request_extension(s, clock, school_code=SCHOOL, due=date(2021, 12, 1), reason="x" * (MAX_REASON + 1), actor=SCHOOL_ADMIN),
    ):
        with pytest.raises(TextRefused), transaction(planned) as s:
            too_long(s)


@pytest.mark.parametrize("value", [-5, 1e308, 51, float("nan"), float("inf")])
def test_facts_take_the_range_the_workflow_gives(planned: sessionmaker[Session], clock: FixedClock, value: float) -> None:
    """team_members accepted −5 and 1e308; the workflow file says 0–50."""
    with pytest.raises(TransitionRefused, match="0 到 50"), transaction(planned) as s:
        set_fact(s, clock, school_code=SCHOOL, name="team_members", value=value, actor=COUNTY_OFFICER)


def test_cli_refuses_an_overlong_reason_in_one_line(planned: sessionmaker[Session], db: Engine) -> None:
    url = db.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["--db", url, "--now", "2021-07-01T10:00", "transition", SCHOOL, "suspend",
                                       "--reason", "长" * (MAX_REASON + 1)])
    assert result.exit_code == 1 and "理由太长" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    with transaction(planned) as s:
        assert [e.trigger for e in events_of(s, SCHOOL)] == ["start"]
