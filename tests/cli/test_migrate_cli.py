"""``rollout workflow migrate`` through the real command line: dry run (text, JSON, XLSX), refusal, move."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from cli.main import main
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.facts import set_fact
from engine.runs import fire
from tests.engine.builders import COUNTY_OFFICER, EARLY, WORKFLOW_PATH, add_teachers, seed_with_plan
from tests.engine.version_builders import online_20h, split_online_study


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, "--now", "2021-07-01T09:00", *args])


def _setup(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    with transaction(sessions(engine)) as s:
        seed_with_plan(s, clock, tmp_path)
        for code, hours in zip(EARLY, (22, 18), strict=True):
            add_teachers(s, code, 3, online=hours, practice=0, evidence=0)
            set_fact(s, clock, school_code=code, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=code, name="team_members", value=4, actor=COUNTY_OFFICER)
            fire(s, clock, school_code=code, trigger="advance", actor=COUNTY_OFFICER)
    engine.dispose()


def _variant(tmp_path: Path, version: str, change: object) -> Path:
    data = copy.deepcopy(yaml.safe_load(WORKFLOW_PATH.read_text(encoding="utf-8")))
    data["version"] = version
    change(data)  # type: ignore[operator]
    path = tmp_path / f"v{version}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_dry_run_then_move_then_audit_verify(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    _setup(db_url, clock, tmp_path)
    assert run(db_url, "workflow", "load", str(_variant(tmp_path, "2", online_20h))).exit_code == 0
    book = tmp_path / "preview.xlsx"
    dry = run(db_url, "--lang", "en", "workflow", "migrate", "--plan", "yiyuan-2021", "--to", "whole-school-2.0@2",
              "--dry-run", "--json", "--xlsx", str(book))
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.output)
    ready = [s["school_code"] for s in data["schools"] if s["becomes_ready"]]
    assert ready == [EARLY[0]] and data["dry_run"] is True
    sheet = load_workbook(book).active
    assert sheet is not None
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert any(r[0] == EARLY[0] and r[-2] == "yes" for r in rows)
    text = run(db_url, "workflow", "migrate", "--plan", "yiyuan-2021", "--to", "whole-school-2.0@2", "--dry-run")
    assert "预览（未做任何更改）" in text.output and EARLY[0] in text.output and "✓" in text.output
    no_reason = run(db_url, "workflow", "migrate", "--plan", "yiyuan-2021", "--to", "whole-school-2.0@2")
    assert no_reason.exit_code == 1 and "理由" in no_reason.stderr
    moved = run(db_url, "workflow", "migrate", "--plan", "yiyuan-2021", "--to", "whole-school-2.0@2",
                "--reason", "省项目办通知：网络研修降为20学时", "--actor", "赵处长")
    assert moved.exit_code == 0, moved.output
    assert "已将计划 yiyuan-2021 的 6 所学校更换为 whole-school-2.0@2" in moved.output
    verify = run(db_url, "audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_unmapped_stage_refused_naming_the_schools(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    _setup(db_url, clock, tmp_path)
    assert run(db_url, "workflow", "load", str(_variant(tmp_path, "3", split_online_study))).exit_code == 0
    refused = run(db_url, "--lang", "en", "workflow", "migrate", "--plan", "yiyuan-2021", "--to", "whole-school-2.0@3",
                  "--dry-run")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "has no stage online_study" in refused.stderr and all(c in refused.stderr for c in EARLY)
    bad_map = run(db_url, "workflow", "migrate", "--plan", "yiyuan-2021", "--to", "whole-school-2.0@3",
                  "--map", "online_study", "--dry-run")
    assert bad_map.exit_code == 1 and "旧阶段=新阶段" in bad_map.stderr
    mapped = run(db_url, "workflow", "migrate", "--plan", "yiyuan-2021", "--to", "whole-school-2.0@3",
                 "--map", "online_study=choose_points", "--reason", "拆分阶段")
    assert mapped.exit_code == 0, mapped.output
    assert run(db_url, "audit", "verify").exit_code == 0
