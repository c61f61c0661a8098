"""``rollout workflow validate/load/show`` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import main
from engine.workflow.versions import WORKFLOWS_DIR

WHOLE_SCHOOL = str(WORKFLOWS_DIR / "whole-school-2.0.yaml")
HENAN = str(WORKFLOWS_DIR / "henan-contractor-2021.yaml")


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, *args])


def _broken(tmp_path: Path) -> Path:
    text = Path(WHOLE_SCHOOL).read_text(encoding="utf-8")
    text = text.replace("initial: planning", "initial: plannin").replace('version: "1"', "version: 1")
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_ok(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path}/none.db", "--lang", "en", "workflow", "validate", WHOLE_SCHOOL, HENAN)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{WHOLE_SCHOOL}: OK", f"{HENAN}: OK"]
    assert not (tmp_path / "none.db").exists()  # validating needs no database


def test_validate_bad_file_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = _broken(tmp_path)
    text = bad.read_text(encoding="utf-8")
    version_line = text.splitlines().index("version: 1") + 1
    initial_line = text.splitlines().index("initial: plannin") + 1
    result = run(f"sqlite:///{tmp_path}/none.db", "--lang", "en", "workflow", "validate", WHOLE_SCHOOL, str(bad))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{WHOLE_SCHOOL}: OK" in lines
    assert f"{bad}: 2 problem(s)" in lines
    assert f'  {bad}:{version_line}:10: [version] version must be a quoted string, e.g. "1"' in lines
    assert f"  {bad}:{initial_line}:10: [initial] initial stage plannin is not defined" in lines


def test_validate_in_chinese_by_default(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path}/none.db", "workflow", "validate", str(_broken(tmp_path)))
    assert result.exit_code == 1
    assert "初始阶段 plannin 未定义" in result.output


def test_load_then_show_from_the_database(db_url: str) -> None:
    result = run(db_url, "--lang", "en", "workflow", "load", WHOLE_SCHOOL)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Loaded workflow whole-school-2.0@1 (record #1)"
    again = run(db_url, "--lang", "en", "workflow", "load", WHOLE_SCHOOL)
    assert again.exit_code == 0
    assert "already loaded, content unchanged" in again.output
    shown = run(db_url, "workflow", "show", "whole-school-2.0", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["source_name"] == WHOLE_SCHOOL  # came from the database row
    assert data["initial"] == "planning"


def test_load_refuses_a_broken_file(db_url: str, tmp_path: Path) -> None:
    result = run(db_url, "--lang", "en", "workflow", "load", str(_broken(tmp_path)))
    assert result.exit_code == 1
    assert "initial stage plannin is not defined" in result.output


def test_show_table_from_shipped_files(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path}/none.db", "--lang", "en", "workflow", "show", "whole-school-2.0")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Whole-school advancement (Programme 2.0) (whole-school-2.0@1)" in out
    assert "Initial stage: planning; entry stages: pilot" in out
    assert "plan_filed: plan_filed >= 1; team_formed: team_members >= 3" in out
    assert "30 working days after stage entry" in out
    assert "escalate school+0 county+7 city+30 province+60" in out
    assert any(line.split()[:4] == ["override", "override", "pilot,", "planning,"] for line in out.splitlines())
    # who records each fact, from the metrics' roles
    assert any(line.split()[:1] + line.split()[-1:] == ["plan_filed", "county_office"] for line in out.splitlines())
    assert any(line.startswith("supervision_result") and line.endswith("supervisor, county_office, city_office")
               for line in out.splitlines())
    assert not (tmp_path / "none.db").exists()


def test_show_json_and_mermaid(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/none.db"
    data = json.loads(run(url, "workflow", "show", "henan-contractor-2021", "--json").output)
    assert data["id"] == "henan-contractor-2021"
    training = next(s for s in data["stages"] if s["id"] == "training")
    assert training["due"] == {"kind": "date", "date": "2021-06-30", "amount": 0, "working_days": False}
    assert {"metric": "briefings_submitted", "op": ">=", "value": 3.0}.items() <= training["gates"][0].items()
    mm = run(url, "workflow", "show", "whole-school-2.0", "--mermaid")
    assert mm.exit_code == 0
    assert mm.output.splitlines()[3] == "stateDiagram-v2"


def test_show_unknown_workflow_or_version(db_url: str) -> None:
    result = run(db_url, "--lang", "en", "workflow", "show", "nope")
    assert result.exit_code == 1
    assert "workflow nope not found" in result.output
    result = run(db_url, "--lang", "en", "workflow", "show", "whole-school-2.0", "--version", "9")
    assert result.exit_code == 1
    assert "whole-school-2.0@9 not found" in result.output


def test_load_of_a_copy_that_kept_the_id_says_so(db_url: str, tmp_path: Path) -> None:
    """A copy of the shipped file keeps `workflow: whole-school-2.0`; `workflow show my-county` then
    found nothing and `load` gave no hint (issue 17, 13)."""
    copy = tmp_path / "my-county.yaml"
    copy.write_text(Path(WHOLE_SCHOOL).read_text(encoding="utf-8"), encoding="utf-8")
    got = run(db_url, "workflow", "load", str(copy))
    assert got.exit_code == 0, got.output
    assert "workflow: 是 whole-school-2.0" in got.stderr and "改为新的名称（如 my-county）" in got.stderr
    renamed = tmp_path / "my-county-2.yaml"
    text = Path(WHOLE_SCHOOL).read_text(encoding="utf-8").replace("workflow: whole-school-2.0", "workflow: my-county-2", 1)
    renamed.write_text(text, encoding="utf-8")
    loaded = run(db_url, "workflow", "load", str(renamed))
    assert loaded.exit_code == 0, loaded.output
    assert loaded.stderr == "" and "my-county-2@1" in loaded.stdout
    assert run(db_url, "workflow", "show", "my-county-2").exit_code == 0
    quiet = run(db_url, "workflow", "load", WHOLE_SCHOOL)
    assert quiet.stderr == ""
