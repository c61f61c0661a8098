import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "calendar-2026.yaml"


@pytest.fixture
def run(db_url: str) -> Callable[..., Result]:
    """Invoke ``rollout --db <db_url> …`` on the parametrized database."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)

    return invoke


def test_seed_then_count_working_days_across_national_day(run: Callable[..., Result]) -> None:
    seeded = run("calendar", "seed", "--from", "2021", "--to", "2021")
    assert seeded.exit_code == 0, seeded.output
    assert "1 个年份" in seeded.stdout
    got = run("calendar", "workdays", "2021-09-30", "3")
    assert got.exit_code == 0
    assert got.stdout.strip() == "2021-10-11 周一"
    assert got.stderr == ""


def test_workdays_warns_when_provisional(run: Callable[..., Result]) -> None:
    run("calendar", "seed", "--from", "2026", "--to", "2026")
    got = run("calendar", "workdays", "2026-12-30", "3", "--json")
    assert got.exit_code == 0
    assert json.loads(got.stdout) == {"start": "2026-12-30", "n": 3, "due": "2027-01-04", "provisional": True}
    assert "暂定" in got.stderr
    english = run("--lang", "en", "calendar", "workdays", "2026-09-30", "1")
    assert english.stdout.strip() == "2026-10-08 Thu"
    assert english.stderr == ""


def test_seed_beyond_the_library_says_which_year_is_provisional(run: Callable[..., Result]) -> None:
    got = run("--lang", "en", "calendar", "seed", "--from", "2026", "--to", "2027")
    assert got.exit_code == 0
    assert "no data for 2027" in got.stderr
    shown = json.loads(run("calendar", "show", "2027", "--json").stdout)
    assert shown == {"year": 2027, "status": "provisional", "source": None, "holidays": [], "workdays": []}


def test_import_and_show(run: Callable[..., Result]) -> None:
    got = run("calendar", "import", str(EXAMPLE), "--year", "2026")
    assert got.exit_code == 0, got.output
    assert "25" in got.stdout
    shown = json.loads(run("calendar", "show", "2026", "--json").stdout)
    assert shown["status"] == "official"
    assert {"date": "2026-02-14", "name": "春节"} in shown["workdays"]
    assert {"date": "2026-10-07", "name": "国庆节"} in shown["holidays"]
    assert len(shown["holidays"]) + len(shown["workdays"]) == 25
    text = run("calendar", "show", "2026").stdout
    assert "2026 年：官方" in text
    assert "2026-02-14  周六  调休上班  春节" in text


def test_bad_notice_fails_with_every_line_and_leaves_the_year_alone(run: Callable[..., Result], tmp_path: Path) -> None:
    bad = tmp_path / "2027.yaml"
    bad.write_text("year: 2027\nholidays:\n  - 春节 2027-02-06..2027-02-12\nworkdays:\n  - 2027-02-15\n  - 2027-13-01 x\n",
                   encoding="utf-8")
    got = run("calendar", "import", str(bad), "--year", "2027")
    assert got.exit_code == 1
    assert f"{bad}:5: [workdays[0].date]" in got.stderr
    assert f"{bad}:6: [workdays[1].date]" in got.stderr
    shown = json.loads(run("calendar", "show", "2027", "--json").stdout)
    assert shown["status"] == "provisional"


def test_bad_start_date_is_a_usage_error(run: Callable[..., Result]) -> None:
    got = run("calendar", "workdays", "2021-02-30", "1")
    assert got.exit_code == 2
    assert "2021-02-30" in got.stderr


def test_negative_offsets_need_no_double_dash(run: Callable[..., Result]) -> None:
    """`calendar workdays 2021-10-08 -1` answered "No such option '-1'" (issue 17, 14)."""
    run("calendar", "seed", "--from", "2021", "--to", "2021")
    got = run("calendar", "workdays", "2021-10-08", "-1")
    assert got.exit_code == 0, got.output
    assert got.stdout.strip() == "2021-09-30 周四"  # 10-01..10-07 national holiday; 09-30 is a working day


def test_a_second_seed_says_it_changed_nothing(run: Callable[..., Result]) -> None:
    first = run("calendar", "seed", "--from", "2021", "--to", "2022")
    assert "有变化的年份：2021、2022" in first.stdout
    again = run("calendar", "seed", "--from", "2021", "--to", "2022")
    assert "未做更改" in again.stdout and "有变化" not in again.stdout


def test_a_year_can_be_made_provisional_again(run: Callable[..., Result]) -> None:
    """The sample notice marks 2026 official and no command turned it back (issue 17, 14)."""
    run("calendar", "import", str(EXAMPLE), "--year", "2026")
    assert "[通知文件 calendar-2026.yaml]" in run("calendar", "show", "2026").stdout  # not "[notice file …]"
    got = run("calendar", "provisional", "2026")
    assert got.exit_code == 0, got.output
    assert "删除 25 个调整日" in got.stdout
    shown = json.loads(run("calendar", "show", "2026", "--json").stdout)
    assert shown["status"] == "provisional" and shown["holidays"] == [] and shown["workdays"] == []
    assert "暂定" in run("calendar", "workdays", "2026-09-30", "1").stderr
