"""``rollout regions|schools|progress import`` and ``schools list`` through the real CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import main


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, *args])


def load_tree(db_url: str, tmp_path: Path) -> None:
    regions = write_csv(tmp_path / "regions.csv", [
        ["行政区划代码", "行政区划名称"],
        ["370000", "山东省"], ["370300", "淄博市"], ["370323", "沂源县"], ["370322", "高青县"],
        ["410000", "河南省"], ["410100", "郑州市"], ["410102", "中原区"],
    ], "gb18030")
    assert run(db_url, "regions", "import", str(regions)).exit_code == 0
    schools = write_csv(tmp_path / "schools.csv", [
        ["学校标识码", "学校名称", "县区代码", "学段", "是否农村", "是否试点"],
        ["3703230001", "沂源县第一中学", "370323", "高中", "否", "是"],
        ["3703220001", "高青县实验小学", "370322", "小学", "是", "否"],
        ["4101020001", "郑州市中原区实验小学", "410102", "小学", "否", "否"],
    ], "utf-8-sig")
    assert run(db_url, "schools", "import", str(schools)).exit_code == 0


def test_import_all_three_and_reimport(db_url: str, tmp_path: Path) -> None:
    regions = write_csv(tmp_path / "r.csv", [["代码", "名称"], ["370000", "山东省"], ["370300", "淄博市"], ["370323", "沂源县"]], "gb18030")
    result = run(db_url, "regions", "import", str(regions))
    assert result.exit_code == 0, result.output
    assert "行政区划导入完成：共 3 行，新增 3，更新 0，未变 0" in result.output
    schools = write_csv(tmp_path / "s.csv", [
        ["学校标识码", "学校名称", "县区代码", "学段", "是否农村"], ["3703230001", "沂源县第一中学", "370323", "高中", "否"],
    ])
    assert "新增 1" in run(db_url, "schools", "import", str(schools)).output
    progress = write_csv(tmp_path / "p.csv", [
        ["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点"],
        ["T1", "张三", "3703230001", "25", "25", "3、11、15"],
        ["T2", "李四", "3703230001", "10", "0", ""],
    ], "utf-8-sig")
    first = run(db_url, "--lang", "en", "progress", "import", str(progress))
    assert first.exit_code == 0, first.output
    assert "Imported teacher progress: 2 rows, 2 inserted, 0 updated, 0 unchanged" in first.output
    again = run(db_url, "progress", "import", str(progress), "--json")
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    # The same bytes again: nothing recorded, and it says which import had them.
    assert data.pop("import_id") is None and data.pop("same_as") == 1 and len(data.pop("sha256")) == 64
    assert data == {"kind": "progress", "source": str(progress), "total": 2, "inserted": 0,
                    "updated": 0, "unchanged": 2, "rejected": 0, "left": 0, "as_of": data["as_of"],
                    "accepted": True}


def test_rejected_file_prints_every_problem_and_exits_1(db_url: str, tmp_path: Path) -> None:
    load_tree(db_url, tmp_path)
    bad = write_csv(tmp_path / "p.csv", [
        ["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点"],
        ["T1", "张三", "3703239999", "25", "25", ""],
        ["T2", "李四", "3703230001", "-3", "0", "1,2,3,4"],
    ])
    result = run(db_url, "progress", "import", str(bad))
    assert result.exit_code == 1
    assert "错误：" in result.stderr
    assert f"{bad}:2:3: [学校标识码]" in result.stderr
    assert f"{bad}:3:4: [线上学时]" in result.stderr
    assert f"{bad}:3:6: [能力点]" in result.stderr
    assert "Traceback" not in result.output
    as_json = run(db_url, "progress", "import", str(bad), "--json")
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    assert data["accepted"] is False
    assert [(p["row"], p["header"]) for p in data["problems"]] == [(2, "学校标识码"), (3, "线上学时"), (3, "能力点")]


def test_id_number_column_is_refused(db_url: str, tmp_path: Path) -> None:
    load_tree(db_url, tmp_path)
    bad = write_csv(tmp_path / "p.csv", [
        ["教师编号", "姓名", "身份证号", "学校标识码", "线上学时", "校本实践学时", "能力点"],
        ["T1", "张三", "11010519491231002X", "3703230001", "25", "25", ""],
    ])
    result = run(db_url, "--lang", "en", "progress", "import", str(bad))
    assert result.exit_code == 1
    assert "national ID column '身份证号'" in result.stderr


def test_custom_mapping_option(db_url: str, tmp_path: Path) -> None:
    load_tree(db_url, tmp_path)
    mapping = tmp_path / "city.yaml"
    mapping.write_text("teachers:\n  platform_id: [研修账号]\n", encoding="utf-8")
    path = write_csv(tmp_path / "p.csv", [
        ["研修账号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点"],
        ["Z1", "张三", "3703230001", "25", "25", "1"],
    ])
    assert run(db_url, "progress", "import", str(path)).exit_code == 1
    result = run(db_url, "progress", "import", str(path), "--mapping", str(mapping))
    assert result.exit_code == 0, result.output
    assert "新增 1" in result.output


def test_schools_list_by_region(db_url: str, tmp_path: Path) -> None:
    load_tree(db_url, tmp_path)
    shandong = run(db_url, "schools", "list", "--region", "370000", "--json")
    assert [s["code"] for s in json.loads(shandong.stdout)] == ["3703220001", "3703230001"]
    county = run(db_url, "schools", "list", "--region", "370323")
    assert "沂源县第一中学" in county.output and "高青县" not in county.output
    everything = run(db_url, "schools", "list", "--json")
    assert len(json.loads(everything.stdout)) == 3
    missing = run(db_url, "schools", "list", "--region", "999900")
    assert missing.exit_code == 1
    assert "999900" in missing.stderr
