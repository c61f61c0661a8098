"""engine.rates: the 2.0 programme's named rates (workflows/whole-school-2.0.yaml ``rates:``)
counted per region from real teacher rows and facts, numerator and denominator both."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from engine.clock import FixedClock
from engine.db import sessions, transaction
from engine.facts import set_fact
from engine.models import School
from engine.plan import find_plan
from engine.rates import RateValue, rate_values, total
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import (
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    OTHER_COUNTY,
    add_teachers,
    seed_with_plan,
)


def test_programme_rates_per_county(db: Engine, clock: FixedClock, tmp_path: Path) -> None:
    factory = sessions(db)
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        add_teachers(s, EARLY[0], 10)  # 30 h online and practice, 3 points, 3 pieces of evidence, pass
        add_teachers(s, EARLY[1], 4, online=30, practice=10, evidence=0, result=None)
        add_teachers(s, EARLY[1], 2, online=0, practice=0, points=0, evidence=0, result=None, start=4)
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=EARLY[1], name="plan_filed", value=0, actor=COUNTY_OFFICER)
    with transaction(factory) as s:
        plan = find_plan(s, None)
        wf = workflow_for_version(s, plan.workflow_version_id)
        assert list(wf.rates) == ["participation", "online_hours_met", "practice_hours_met", "evidence_submitted",
                                  "passed", "plan_filed"]
        by = rate_values(s, wf, plan.id, School.county_code)
        county = {k: (v.numerator, v.denominator) for k, v in by[COUNTY].items()}
        assert county == {"participation": (14, 16), "online_hours_met": (14, 16), "practice_hours_met": (10, 16),
                          "evidence_submitted": (10, 16), "passed": (10, 16), "plan_filed": (1, 5)}
        other = by[OTHER_COUNTY]
        assert other["participation"] == RateValue(0, 0) and other["participation"].value is None  # no data, not 0 %
        assert other["plan_filed"] == RateValue(0, 1)
        assert total(list(by.values()), "plan_filed") == RateValue(1, 6)  # summed, not averaged
        # a narrower scope counts only its schools
        one = rate_values(s, wf, plan.id, School.code, School.code == EARLY[1])
        assert set(one) == {EARLY[1]} and one[EARLY[1]]["practice_hours_met"] == RateValue(0, 6)
        assert one[EARLY[1]]["participation"].value == 4 / 6
