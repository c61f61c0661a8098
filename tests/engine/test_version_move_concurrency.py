"""A version move and an officer's advance at the same moment on PostgreSQL: exactly one wins, cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction, upgrade
from engine.errors import RolloutError, StaleStateError
from engine.facts import set_fact
from engine.models import AuditEvent
from engine.projection import verify_state
from engine.runs import Actor, find_run, fire
from engine.version_apply import apply_move
from engine.version_move import preview_move
from engine.version_rules import MIGRATE
from tests.conftest import PgSchema
from tests.engine.builders import COUNTY_OFFICER, EARLY, PROVINCE_OFFICER, run_of, seed_with_plan
from tests.engine.version_builders import online_20h, register_variant

SCHOOL = EARLY[0]


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["move", "advance"])
def test_move_and_advance_race(pg_schema: PgSchema, clock: FixedClock, tmp_path: Path, first: str) -> None:
    engine = make_engine(pg_schema.url)
    try:
        upgrade(engine)
        factory = sessions(engine)
        with transaction(factory) as s:
            seed_with_plan(s, clock, tmp_path)
            set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=SCHOOL, name="team_members", value=3, actor=COUNTY_OFFICER)
            register_variant(s, clock, "2", online_20h)
        both_read = threading.Barrier(2, timeout=30)
        wrote = threading.Event()
        won: list[str] = []
        lost: list[RolloutError] = []

        def act(who: str) -> None:
            try:
                with transaction(factory) as s:
                    if who == "move":
                        preview = preview_move(s, clock, plan_code=None, to="whole-school-2.0@2")
                        both_read.wait()  # both have read the school at the same version …
                        if first == "advance":
                            wrote.wait(30)
                        apply_move(s, clock, plan_code=None, to="whole-school-2.0@2", reason="20学时",
                                   actor=PROVINCE_OFFICER, preview=preview)
                    else:
                        seen = find_run(s, SCHOOL).version
                        both_read.wait()
                        if first == "move":
                            wrote.wait(30)
                        fire(s, clock, school_code=SCHOOL, trigger="advance", actor=Actor("王主任", "county_office"),
                             expected_version=seen)
                    if who == first:
                        wrote.set()  # … the first one has written, the other now writes over the same row
                        threading.Event().wait(0.5)  # and waits on its lock until this commits
                won.append(who)
            except RolloutError as exc:
                lost.append(exc)
                wrote.set()

        threads = [threading.Thread(target=act, args=(w,)) for w in ("move", "advance")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert won == [first], lost
        assert len(lost) == 1 and isinstance(lost[0], StaleStateError)
        with transaction(factory) as s:
            moved = s.scalars(select(AuditEvent).where(AuditEvent.trigger == MIGRATE)).all()
            assert (len(moved) == 6) == (first == "move")
            assert run_of(s, SCHOOL).state == ("planning" if first == "move" else "online_study")
            assert verify_state(s).ok
        assert verify_chains(engine).ok
    finally:
        engine.dispose()
