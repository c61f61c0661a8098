"""``rollout tokens add/list/revoke`` through the real command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.tokens import TokenRefused, token_user
from tests.cli.test_serve_cli import ok, run, seeded  # noqa: F401  (fixture)
from tests.engine.builders import COUNTY


def test_add_shows_the_token_once_list_never_revoke_ends_it(seeded: str, clock: FixedClock) -> None:  # noqa: F811
    result = CliRunner().invoke(main, ["--db", seeded, "--now", "2021-07-01", "tokens", "add", "city-platform",
                                       "--role", "county_office", "--scope", COUNTY, "--days", "90"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("rlt_")
    listed = ok(seeded, "tokens", "list", "--json").output
    rows = json.loads(listed)
    assert rows[0]["name"] == "city-platform" and rows[0]["prefix"] == token[:12] and token not in listed
    engine = make_engine(seeded)
    with transaction(sessions(engine)) as s:
        assert token_user(s, clock, token).scope_code == COUNTY
    assert "1" in ok(seeded, "tokens", "revoke", "city-platform").output
    with transaction(sessions(engine)) as s, pytest.raises(TokenRefused):
        token_user(s, clock, token)
    engine.dispose()
    bad = run(seeded, "tokens", "add", "x", "--role", "county_office", "--scope", "999999")
    assert bad.exit_code != 0 and "999999" in bad.output
