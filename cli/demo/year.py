"""A reproducible county year, replayed with the clock: the main job ``rollout demo`` shows.

Built on seed 001 (沂源县, 370323): pilot schools start in 2021-07 (第一阶段 试点), every school has
started by 2021-12-01 (2021年12月1日前全面启动), online study and practice run 2021-12..2022-08
(第三阶段), county supervision 2022-08..2022-11 (第四阶段), hard deadline 2022-11-30. Data goes in
the way an office's would: CSV files with Chinese headers (one in GB18030) through the importers.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import (
    KINDS as NOTICE_KINDS,
)
from engine import (
    Actor,
    FixedClock,
    Notification,
    School,
    SchoolRun,
    find_plan,
    fire,
    load_plan,
    sessions,
    set_fact,
    transaction,
    warning_outcomes,
)
from engine.audit import VerifyReport, verify_chains
from engine.imports import import_progress, import_regions, import_schools, seed_calendar
from engine.workflow import load_workflow_text, register_workflow, shipped_workflow_paths
from notifications import dispatch, import_contacts
from service import run_bulletins, run_sweep

TZ = ZoneInfo("Asia/Shanghai")
FINAL = date(2022, 11, 30)
COUNTY, CITY, PROVINCE = "370323", "370300", "370000"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅琳建国志新宇晨欣怡浩然子涵梓萱雨轩博文思远嘉怡"
TOWNS = ["历山", "南麻", "悦庄", "南鲁山", "东里", "燕崖", "中庄", "张家坡", "石桥", "西里", "大张庄", "鲁村"]
KINDS = [("小学", 0.5), ("初中", 0.2), ("幼儿园", 0.2), ("九年一贯制", 0.1)]
PHASES = [  # (phase end, title) from 001 实施步骤
    (date(2021, 11, 30), "第一阶段末（试点、规划）/ end of phase 1"),
    (date(2021, 12, 31), "第二阶段末（全面启动）/ end of phase 2"),
    (date(2022, 8, 31), "第三阶段末（研修与实践）/ end of phase 3"),
    (date(2022, 11, 30), "第四阶段末（督导考核，最终截止）/ end of phase 4 (final deadline)"),
]


@dataclass
class DemoSchool:
    code: str
    name: str
    pilot: bool
    diligence: float  # how fast its teachers progress; a few schools lag behind
    teachers: list[tuple[str, str, float]] = field(default_factory=list)  # id, name, own pace
    rework_until: date | None = None


@dataclass
class DemoReport:
    schools: int
    teachers: int
    advanced: int = 0
    returned: int = 0
    items: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NOTICE_KINDS, 0))
    warned: int = 0  # school runs warned early (预警), how many then missed, how many not due yet
    warned_missed: int = 0
    warned_pending: int = 0
    messages: dict[str, int] = field(default_factory=dict)  # notifications delivered, per kind
    outbox_dir: Path | None = None
    events: int = 0
    verify: VerifyReport | None = None
    blocked_example: str | None = None


def build_county(seed: int, n_schools: int, n_teachers: int) -> list[DemoSchool]:
    rng = random.Random(seed)
    schools: list[DemoSchool] = []
    for i in range(n_schools):
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        town = TOWNS[i % len(TOWNS)]
        name = f"沂源县{town}{'中心' if i < len(TOWNS) else '第' + str(i // len(TOWNS) + 1)}{kind if kind != '九年一贯制' else '学校'}"
        lag = rng.random() < 0.08
        schools.append(DemoSchool(f"37032{i + 30001:05d}", name, pilot=i % 10 == 0,
                                  diligence=rng.uniform(0.35, 0.55) if lag else rng.uniform(0.8, 1.4)))
    weights = [rng.uniform(0.5, 1.5) for _ in schools]
    total = sum(weights)
    tid = 0
    for s, w in zip(schools, weights, strict=True):
        for _ in range(max(8, round(n_teachers * w / total))):
            tid += 1
            name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
            s.teachers.append((f"SD{tid:07d}", name, rng.uniform(0.85, 1.5)))
    return schools


def _months(since: date, today: date) -> float:
    return max(0.0, (today - since).days / 30.4)


def progress_rows(schools: list[DemoSchool], today: date, rng: random.Random) -> list[list[str]]:
    """Each teacher's cumulative record as the platform would export it on ``today``."""
    rows = []
    for s in schools:
        online_start = date(2021, 9, 1) if s.pilot else date(2021, 12, 1)
        practice_start = online_start + timedelta(days=90)
        for tid, name, pace in s.teachers:
            online = min(40.0, round(9 * _months(online_start, today) * s.diligence * pace, 1))
            practice = min(36.0, round(7 * _months(practice_start, today) * s.diligence * pace, 1))
            chosen = [] if online < 10 else sorted(random.Random(tid).sample(range(1, 31), 3))  # 3 of 30 points (001 附件3)
            evidence = 3 if practice >= 25 else int(practice // 9)
            if s.rework_until and today < s.rework_until:
                evidence = min(evidence, 2)  # the county found the evidence wanting; it is being redone
            result = ("优秀" if pace > 1.4 else "合格") if evidence == 3 and today >= date(2022, 9, 1) else ""
            rows.append([tid, name, s.code, f"{online:g}", f"{practice:g}", "、".join(map(str, chosen)),
                         str(evidence if chosen else 0), result])
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=TZ)


def run_demo(engine: Engine, workdir: Path, *, seed: int = 2021, n_schools: int = 100, n_teachers: int = 5000,
             on_phase_end: Callable[[str, FixedClock], None] | None = None) -> DemoReport:
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    clock = FixedClock(at(date(2021, 6, 20)))
    factory = sessions(engine)
    schools = build_county(seed, n_schools, n_teachers)
    report = DemoReport(len(schools), sum(len(s.teachers) for s in schools))
    county = Actor("沂源县项目办", "county_office")
    school_admin = Actor("学校管理员", "school_admin")

    regions = write_csv(workdir / "regions.csv", ["行政区划代码", "行政区划名称", "级别", "上级区划代码"],
                        [[PROVINCE, "山东省", "省", ""], [CITY, "淄博市", "市", PROVINCE], [COUNTY, "沂源县", "县", CITY]])
    school_file = write_csv(workdir / "schools.csv", ["学校标识码", "学校名称", "县区代码", "学段", "是否农村", "是否试点"],
                            [[s.code, s.name, COUNTY, s.name[-3:] if s.name.endswith("幼儿园") else ("小学" if "小学" in s.name else "初中" if "初中" in s.name else "九年一贯制"),
                              "是" if i % 3 else "否", "是" if s.pilot else "否"] for i, s in enumerate(schools)],
                            encoding="gb18030")  # offices' exports are often GB18030
    wf_path = next(p for p in shipped_workflow_paths() if p.name == "whole-school-2.0.yaml")
    with transaction(factory) as session:
        import_regions(session, regions)
        import_schools(session, school_file)
        seed_calendar(session, [2021, 2022], clock)
        # The county warns early (issue 11): 预警 when a school is 70 % likely to miss a due date.
        text = wf_path.read_text(encoding="utf-8").replace("      repeat_days: 7\n", "      repeat_days: 7\n      warn_at_risk: 0.7\n", 1)
        register_workflow(session, load_workflow_text(text, wf_path.name), text, clock)
    outbox = report.outbox_dir = workdir / "outbox"
    contacts = write_csv(workdir / "contacts.csv", ["地区或学校代码", "级别", "名称", "渠道", "地址"],
                         [[s.code, "school", f"{s.name}管理员", "file", str(outbox)] for s in schools]
                         + [[COUNTY, "county", "沂源县项目办", "file", str(outbox)],
                            [CITY, "city", "淄博市项目办", "file", str(outbox)],
                            [PROVINCE, "province", "山东省项目办", "file", str(outbox)]])
    with transaction(factory) as session:
        import_contacts(session, contacts)
    plan_file = workdir / "plan.yaml"
    plan_file.write_text(PLAN_YAML, encoding="utf-8")
    with transaction(factory) as session:
        load_plan(session, plan_file, clock, actor="沂源县项目办", role="county_office")

    day = date(2021, 7, 1)
    phase = 0
    while phase < len(PHASES):
        day = min(day + timedelta(days=14), PHASES[phase][0])
        clock.set(at(day))
        _progress(factory, workdir, schools, day, rng, clock)
        _office_work(factory, clock, schools, day, county, school_admin, report, rng)
        with transaction(factory) as session:  # what the scheduler does: sweep, bulletins, dispatch
            swept = run_sweep(session, clock)
            run_bulletins(session, clock)
        report.advanced += swept.advanced
        for kind, n in swept.items.items():
            report.items[kind] += n
        while dispatch(engine, clock, worker_id="demo", batch_size=500).claimed:
            pass
        if day == PHASES[phase][0]:
            if on_phase_end:
                on_phase_end(PHASES[phase][1], clock)
            phase += 1
    with factory() as session:
        report.messages = dict(session.execute(
            select(Notification.kind, func.count()).where(Notification.status == "sent").group_by(Notification.kind)).all())
        report.verify = verify_chains(session)
        report.events = report.verify.events
        report.blocked_example = _blocked_example(session)
        report.warned, report.warned_missed, report.warned_pending = warning_outcomes(session, clock, find_plan(session, None))
    return report


def _progress(factory: sessionmaker[Session], workdir: Path, schools: list[DemoSchool], day: date,
              rng: random.Random, clock: FixedClock) -> None:
    header = ["教师编号", "姓名", "学校标识码", "网络研修学时", "校本实践学时", "所选能力点", "提交作品数", "测评结果"]
    path = write_csv(workdir / "progress.csv", header, progress_rows(schools, day, rng))
    with transaction(factory) as session:
        import_progress(session, path, as_of=day, clock=clock, actor="省平台导出")


def _office_work(factory: sessionmaker[Session], clock: FixedClock, schools: list[DemoSchool], day: date,
                 county: Actor, admin: Actor, report: DemoReport, rng: random.Random) -> None:
    """What the county office and schools record as the year goes on (facts, manual transitions)."""
    with transaction(factory) as session:
        states = dict(session.execute(select(SchoolRun.school_code, SchoolRun.state)).all())
        pilots = {c for (c,) in session.execute(select(School.code).where(School.pilot))}
        for i, s in enumerate(schools):
            state = states[s.code]
            if s.code in pilots and state == "pilot" and day >= date(2021, 11, 10):
                set_fact(session, clock, school_code=s.code, name="pilot_summary_filed", value=1, actor=county,
                         note="试点经验总结已报送")
                fire(session, clock, school_code=s.code, trigger="advance", actor=county)  # manual: 总结推广
            elif state == "planning" and day >= date(2021, 12, 15) + timedelta(days=3 * (i % 12)):
                set_fact(session, clock, school_code=s.code, name="team_members", value=3 + i % 3, actor=admin)
                set_fact(session, clock, school_code=s.code, name="plan_filed", value=1, actor=county,
                         note="学校信息化发展规划与校本研修计划已审核备案")
            elif state == "assessment" and day >= date(2022, 6, 15):
                set_fact(session, clock, school_code=s.code, name="assessment_entered", value=1, actor=admin)
                if i % 25 == 7 and s.rework_until is None:  # the county's spot check finds weak evidence
                    s.rework_until = day + timedelta(days=30)
                    set_fact(session, clock, school_code=s.code, name="assessment_entered", value=0, actor=county)
                    fire(session, clock, school_code=s.code, trigger="return_for_rework", actor=county,
                         reason="县级抽查：部分教师能力点成果材料不完整，退回补充")
                    report.returned += 1
                else:
                    set_fact(session, clock, school_code=s.code, name="county_spot_check_done", value=1, actor=county)
            elif state == "supervision" and day >= date(2022, 9, 15):
                set_fact(session, clock, school_code=s.code, name="supervision_result", value=1, actor=county,
                         note="县级督导考核合格")


def _blocked_example(session: Session) -> str | None:
    row = session.execute(select(SchoolRun.school_code).where(SchoolRun.state.in_(["online_study", "practice"]))
                          .order_by(SchoolRun.school_code).limit(1)).first()
    return None if row is None else row[0]


PLAN_YAML = """\
# 沂源县提升工程2.0整校推进计划 (seed 001: 源教体发〔2021〕18号)
plan: yiyuan-2021
title: {zh: 沂源县中小学教师信息技术应用能力提升工程2.0整校推进（2021—2022）, en: Yiyuan county whole-school rollout 2021-2022}
workflow: whole-school-2.0
year: 2021
timezone: Asia/Shanghai
region: "370323"
final_deadline: 2022-11-30      # 2022年11月30日前 每位教师完成50学时
extension_cap: 2022-11-30
batches:
  - id: pilot
    title: {zh: 试点校, en: Pilot schools}
    start: 2021-07-05           # 第一阶段（2021年7月—11月）试点先行
    start_stage: pilot
    share: 0.1
    schools: {pilot: true}
    deadlines: {pilot: 2021-11-30, planning: 2021-12-31, practice: 2022-08-31, supervision: 2022-11-30}
  - id: all
    title: {zh: 全面推进, en: All other schools}
    start: 2021-12-01           # 2021年12月1日前全面启动
    start_stage: planning
    share: 0.9
    schools: {rest: true}
    deadlines: {planning: 2021-12-31, practice: 2022-08-31, supervision: 2022-11-30}
"""
