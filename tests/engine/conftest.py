"""Fixtures shared by the engine-core tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from tests.engine.builders import seed_with_plan


@pytest.fixture
def plan(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    """The builders' regions, schools, workflow and three-batch plan, loaded and committed."""
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
    return factory
