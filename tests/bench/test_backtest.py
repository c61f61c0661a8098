"""The backtest runs end to end on a small term and prints its table (numbers are in docs/forecast.md)."""

from __future__ import annotations

import pytest

from bench import backtest


def test_small_backtest_prints_every_method_and_cutoff(capsys: pytest.CaptureFixture[str]) -> None:
    backtest.main(["--schools", "12", "--samples", "60", "--seed", "3"])
    out = capsys.readouterr().out
    for cutoff in backtest.CUTOFFS:
        for method in ("forecast", "straight line", "base rate"):
            assert f"| {cutoff} | {method} |" in out
    assert "Calibration of the forecast, 20 working days before" in out


def test_the_generator_is_deterministic_and_makes_both_outcomes() -> None:
    cal = backtest.calendar()
    a, b = backtest.generate(40, 5, cal), backtest.generate(40, 5, cal)
    assert (a.missed == b.missed).all() and 0 < a.missed.sum() < 40
