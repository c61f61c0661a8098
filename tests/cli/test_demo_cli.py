"""The main job: ``rollout demo`` replays a county year and ends with the audit trail verified."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from cli.main import main


def _demo(db_url: str, workdir: Path) -> str:
    result = CliRunner().invoke(main, ["--db", db_url, "demo", "--schools", "12", "--teachers", "300",
                                       "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_replays_the_year_and_verifies(db_url: str, tmp_path: Path) -> None:
    out = _demo(db_url, tmp_path / "files")
    assert out.count("== ") >= 5  # four phase-end tables and one blocked school explained
    for phase_end in ("2021-11-30", "2021-12-31", "2022-08-31", "2022-11-30"):
        assert f"({phase_end})" in out
    assert "审计校验通过" in out
    delivered = re.search(r"已送达消息：提醒 (\d+) 条、逾期 (\d+) 条、督办 (\d+) 条、通报 (\d+) 份", out)
    assert delivered is not None and int(delivered.group(4)) > 0
    sent_files = list((tmp_path / "files" / "outbox").iterdir())
    warned = re.search(r"预警：(\d+) 个学校环节曾在截止日前被预警，其中 (\d+) 个随后确实逾期（(\d+) 个尚未到截止日）；预警消息 (\d+) 条", out)
    assert warned is not None and int(warned.group(2)) <= int(warned.group(1))
    assert len(sent_files) == sum(int(n) for n in delivered.groups()) + int(warned.group(4))


def test_demo_is_deterministic_and_refuses_a_used_database(tmp_path: Path) -> None:
    first = _demo(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "files")
    second = _demo(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "files")
    strip = re.compile(r"用时 [\d.]+ 秒")
    assert strip.sub("", first) == strip.sub("", second)
    again = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'a.db'}", "demo", "--workdir", str(tmp_path / "x")])
    assert again.exit_code == 1
    assert "空数据库" in again.output
    assert "Traceback" not in again.output
