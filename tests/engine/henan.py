"""A small Henan (seed 002) province for tests: the region tree with directly administered counties,
sample schools, the shipped contractor workflow and the example plan, all through the importers and
loaders an office uses (CSV files with Chinese headers)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.imports import import_regions, import_schools
from engine.plan import load_plan
from engine.workflow.loader import load_workflow_file, read_source
from engine.workflow.versions import register_workflow
from tests.engine.builders import REPO

WORKFLOW = REPO / "workflows" / "henan-contractor-2021.yaml"
PLAN = REPO / "docs" / "examples" / "henan-2021-plan.yaml"
PROVINCE, ZHENGZHOU, ZHONGYUAN, NANYANG, XIXIA = "410000", "410100", "410102", "411300", "411323"
GONGYI, DENGZHOU, JIYUAN = "410181", "411381", "419001"  # 省直管县(市) and 济源示范区 (002's addressees)
DIRECT = (GONGYI, DENGZHOU, JIYUAN)
REGIONS = [  # code, name, 省直管
    (PROVINCE, "河南省", ""), (ZHENGZHOU, "郑州市", ""), (ZHONGYUAN, "中原区", ""), (GONGYI, "巩义市", "是"),
    (NANYANG, "南阳市", ""), (XIXIA, "西峡县", ""), (DENGZHOU, "邓州市", "是"), (JIYUAN, "济源市", ""),
]
# two schools in each county: 学校标识码 = county code + 4 digits
SCHOOLS = [f"{county}{i:04d}" for county in (ZHONGYUAN, GONGYI, XIXIA, DENGZHOU, JIYUAN) for i in (1, 2)]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8-sig")
    return path


def henan(session: Session, clock: Clock, tmp_path: Path, plan: Path = PLAN) -> None:
    """Regions (济源 419001 falls under the province by its code; 巩义 and 邓州 by 省直管 = 是),
    ten schools, the workflow and the plan."""
    import_regions(session, write_csv(tmp_path / "区划.csv", ["行政区划代码", "行政区划名称", "省直管"],
                                      [list(r) for r in REGIONS]))
    import_schools(session, write_csv(tmp_path / "学校.csv", ["学校标识码", "学校名称", "县区代码", "学段", "是否农村"],
                                      [[code, f"样板校{code[-6:]}", code[:6], "小学", "否"] for code in SCHOOLS]))
    register_workflow(session, load_workflow_file(WORKFLOW), read_source(WORKFLOW), clock)
    load_plan(session, plan, clock)
