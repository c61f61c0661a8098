"""A reproducible synthetic province, written as an office would export it.

Fixed seed so two runs (and two machines) benchmark the same bytes. Regions and schools are UTF-8
with BOM, progress is GB18030 (offices' Excel exports often are), and an XLSX of the first rows
feeds the XLSX benchmark. Shape follows DOMAIN.md: 河南省 410000 with 17 cities and ~160 counties.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

SEED = 410000
PROVINCE = ("410000", "河南省")
CITIES = ["郑州", "开封", "洛阳", "平顶山", "安阳", "鹤壁", "新乡", "焦作", "濮阳", "许昌", "漯河", "三门峡",
          "南阳", "商丘", "信阳", "周口", "驻马店"]
COUNTIES_PER_CITY = 9  # 17 × 9 = 153 counties, close to Henan's ~160
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅琳建国志新宇晨欣怡浩然子涵梓萱雨轩博文"
KINDS = ["小学", "初中", "幼儿园", "九年一贯制"]
PROGRESS_HEADER = ["教师编号", "姓名", "学校标识码", "网络研修学时", "校本实践学时", "所选能力点", "提交作品数", "测评结果"]
PILOT_DUE = "2021-11-30"  # the sweep benchmark's reminders fall due 3 days before this


@dataclass(frozen=True)
class Size:
    name: str
    schools: int
    teachers: int
    xlsx_rows: int
    events: int  # audit events for the verify benchmark


SIZES = {
    "full": Size("full", 50_000, 1_000_000, 200_000, 1_000_000),
    "small": Size("small", 5_000, 100_000, 20_000, 100_000),
    "tiny": Size("tiny", 50, 1_000, 200, 1_000),
}


@dataclass(frozen=True)
class Dataset:
    size: Size
    regions: Path
    schools: Path
    contacts: Path
    progress_csv: Path
    progress_xlsx: Path
    plan: Path
    school_codes: list[str]
    pilot: list[str]  # 10 %: the pilot batch, whose reminders fall due in the sweep benchmark
    ready: list[str]  # 20 %: every teacher through online study; bulk advance moves these


def counties() -> list[tuple[str, str, str]]:
    """(code, name, city code) for every county."""
    out = []
    for i, city in enumerate(CITIES):
        city_code = f"41{i + 1:02d}00"
        out += [(f"41{i + 1:02d}{j + 1:02d}", f"{city}第{j + 1}县区", city_code) for j in range(COUNTIES_PER_CITY)]
    return out


def describe(workdir: Path, size: Size) -> Dataset:
    """The dataset's paths and code lists (codes depend on the index only, not on the seed)."""
    cs = counties()
    codes = [f"{cs[i % len(cs)][0]}{i // len(cs) + 1:04d}" for i in range(size.schools)]
    return Dataset(size, workdir / "regions.csv", workdir / "schools.csv", workdir / "contacts.csv",
                   workdir / "progress.csv", workdir / "progress.xlsx", workdir / "plan.yaml", codes,
                   [c for i, c in enumerate(codes) if i % 10 == 1], [c for i, c in enumerate(codes) if i % 5 == 0])


def _write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _teacher_row(rng: random.Random, tid: int, school: str, ready: bool) -> list[str]:
    # Realistic spread: most teachers on track, a tail behind; ready schools are all through online study.
    pace = rng.uniform(0.9, 1.6) if ready else rng.betavariate(4, 2) * 1.6
    online = round(min(60.0, 25.0 + 20 * (pace - 0.9)), 1) if ready else round(min(60.0, 40 * pace), 1)
    practice = round(max(0.0, min(50.0, 35 * pace - 8)), 1)
    n_points = 3 if ready or online >= 10 else rng.choice((0, 1, 2, 3))
    points = "、".join(map(str, sorted(rng.sample(range(1, 31), n_points))))
    evidence = min(n_points, int(practice // 9))
    result = rng.choice(("合格", "合格", "优秀", "良好", "")) if evidence == n_points and n_points else ""
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return [f"HN{tid:08d}", name, school, f"{online:g}", f"{practice:g}", points, str(evidence), result]


def generate(workdir: Path, size: Size, seed: int = SEED) -> Dataset:
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    cs = counties()
    regions = [[PROVINCE[0], PROVINCE[1], "省", ""]]
    regions += [[f"41{i + 1:02d}00", f"{c}市", "市", PROVINCE[0]] for i, c in enumerate(CITIES)]
    regions += [[code, name, "县", city] for code, name, city in cs]
    schools: list[list[str]] = []
    codes: list[str] = []
    for i in range(size.schools):
        county = cs[i % len(cs)][0]
        code = f"{county}{i // len(cs) + 1:04d}"
        codes.append(code)
        kind = KINDS[rng.randrange(len(KINDS))]
        schools.append([code, f"{cs[i % len(cs)][1]}第{i // len(cs) + 1}{kind}", county, kind,
                        "是" if rng.random() < 0.6 else "否", "是" if i % 10 == 1 else "否"])
    pilot = [c for i, c in enumerate(codes) if i % 10 == 1]
    ready = [c for i, c in enumerate(codes) if i % 5 == 0]
    ready_set = set(ready)
    ds = Dataset(
        size,
        _write_csv(workdir / "regions.csv", ["行政区划代码", "行政区划名称", "级别", "上级区划代码"], regions, "utf-8-sig"),
        _write_csv(workdir / "schools.csv", ["学校标识码", "学校名称", "县区代码", "学段", "是否农村", "是否试点"],
                   schools, "utf-8-sig"),
        _write_csv(workdir / "contacts.csv", ["地区或学校代码", "级别", "名称", "渠道", "地址"],
                   [[c, "学校", f"{c}管理员", "file", str(workdir / "outbox")] for c in codes], "utf-8-sig"),
        workdir / "progress.csv", workdir / "progress.xlsx", workdir / "plan.yaml", codes, pilot, ready,
    )
    _write_progress(ds, rng, ready_set)
    _write_plan(ds)
    return ds


def _write_progress(ds: Dataset, rng: random.Random, ready: set[str]) -> None:
    from openpyxl import Workbook

    n_schools = len(ds.school_codes)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("教师研修进度")
    sheet.append(PROGRESS_HEADER)
    with ds.progress_csv.open("w", encoding="gb18030", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PROGRESS_HEADER)
        for tid in range(ds.size.teachers):
            school = ds.school_codes[tid % n_schools]
            row = _teacher_row(rng, tid + 1, school, school in ready)
            writer.writerow(row)
            if tid < ds.size.xlsx_rows:
                sheet.append(row)
    book.save(ds.progress_xlsx)


def _write_plan(ds: Dataset) -> None:
    """Pilot 10 % (reminders due 2021-11-30), then three batches of 30 % like Jiangsu's phased start."""
    rest = [c for c in ds.school_codes if c not in set(ds.pilot)]
    third = len(rest) // 3
    later = "{planning: 2022-03-31, online_study: 2022-06-30, practice: 2022-08-31, assessment: 2022-10-31, supervision: 2022-11-30}"

    def codes(chunk: list[str]) -> str:
        return "[" + ", ".join(f'"{c}"' for c in chunk) + "]"

    ds.plan.write_text(f"""\
plan: henan-bench
title: {{zh: 河南省提升工程2.0整校推进（基准测试）, en: Henan province benchmark rollout}}
workflow: whole-school-2.0
year: 2021
timezone: Asia/Shanghai
region: "410000"
final_deadline: 2022-11-30
extension_cap: 2022-12-31
batches:
  - {{id: pilot, title: 试点, start: 2021-07-01, start_stage: pilot, share: 0.1, schools: {{pilot: true}},
     deadlines: {{pilot: {PILOT_DUE}, planning: 2022-03-31}}}}
  - {{id: batch1, title: 第一批, start: 2021-09-01, start_stage: planning, share: 0.3, schools: {{codes: {codes(rest[:third])}}},
     deadlines: {later}}}
  - {{id: batch2, title: 第二批, start: 2021-09-01, start_stage: planning, share: 0.3, schools: {{codes: {codes(rest[third:2 * third])}}},
     deadlines: {later}}}
  - {{id: batch3, title: 第三批, start: 2021-09-01, start_stage: planning, share: 0.3, schools: {{rest: true}},
     deadlines: {later}}}
""", encoding="utf-8")
