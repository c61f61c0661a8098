"""The weekly bulletin's 承训单位 section (seed 002 (九): 各承训单位报到率、结业率……进行通报): each
contractor with schools in the office's region, ranked as regions are, with the Henan workflow's
选送率/报到率/结业率 as numerator/denominator — in the text, the HTML, the markdown and the XLSX —
checked against what this test computes from the facts it recorded."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.contractors import contractor_ranking
from engine.entries import import_facts
from engine.imports.contractors import import_contractors
from engine.models import Contact, Notification
from engine.plan import find_plan
from engine.runs import Actor
from service.sweep import run_bulletins, run_sweep
from tests.engine.henan import GONGYI, PROVINCE, SCHOOLS, ZHENGZHOU, henan, write_csv

OFFICE = Actor("王玥", "province_office")
JIA, YI = "甲大学继续教育学院", "乙教育科技有限公司"
ASSIGN = {c: (JIA if i % 3 else YI) for i, c in enumerate(SCHOOLS)}  # 甲 6 schools, 乙 4
SELECTED = set(SCHOOLS[:7])  # selection_rate 1 (all trainees selected); the rest 0.8
REGISTERED = {c: v for c, v in zip(SCHOOLS[:7], (1, 0.96, 0.9, 0.95, 1, 0.5, 0.99), strict=True)}


def _setup(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with factory() as s, s.begin():
        henan(s, clock, tmp_path)
        for scope, level, name, lang in [(PROVINCE, "province", "省执行办", "zh"), (ZHENGZHOU, "city", "郑州市教育局", "zh"),
                                         (GONGYI, "city", "Gongyi office", "en")]:
            s.add(Contact(scope_code=scope, level=level, name=name, channel="file", address=str(tmp_path / "out"),
                          lang=lang, active=True))
        s.flush()
        import_contractors(s, clock, write_csv(tmp_path / "分配.csv", ["学校标识码", "承训单位"],
                                               [[c, n] for c, n in ASSIGN.items()]), actor="王玥", role="province_office")
        rows = [[c, "contractor_assigned", "1"] for c in SCHOOLS]
        rows += [[c, "selection_rate", "1" if c in SELECTED else "0.8"] for c in SCHOOLS]
        import_facts(s, clock, write_csv(tmp_path / "事实.csv", ["学校标识码", "事实项", "值"], rows), actor=OFFICE)
        run_sweep(s, clock)  # the selected schools move on to registration (the gate: 选送率 ≥ 1)
        rows = [[c, "registration_rate", str(v)] for c, v in REGISTERED.items()]
        import_facts(s, clock, write_csv(tmp_path / "报到.csv", ["学校标识码", "事实项", "值"], rows), actor=OFFICE)


def _expected(schools: list[str]) -> dict[str, dict[str, tuple[int, int]]]:
    out = {}
    for name in (JIA, YI):
        mine = [c for c in schools if ASSIGN[c] == name]
        out[name] = {"selection": (sum(c in SELECTED for c in mine), len(mine)),
                     "registration": (sum(REGISTERED.get(c, 0) >= 0.95 for c in mine), len(mine)),
                     "completion": (0, len(mine))}
    return {k: v for k, v in out.items() if v["selection"][1]}


def test_bulletin_ranks_contractors_with_their_rates(factory: sessionmaker[Session], clock: FixedClock,
                                                    tmp_path: Path) -> None:
    _setup(factory, clock, tmp_path)
    with factory() as s, s.begin():
        ranked = contractor_ranking(s, clock, find_plan(s, None))
        assert {r["contractor"]: {k: (v["numerator"], v["denominator"]) for k, v in r["rates"].items()}
                for r in ranked} == _expected(SCHOOLS)
        assert {r["contractor"]: r["schools"] for r in ranked} == {JIA: 6, YI: 4}
        assert run_bulletins(s, clock) == 3
    with factory() as s:
        sent = {scope: n for scope, n in s.execute(
            select(Contact.scope_code, Notification).join(Contact, Contact.id == Notification.contact_id)
            .where(Notification.kind == "bulletin"))}
        province, city = sent[PROVINCE], sent[ZHENGZHOU]
        english = sent[GONGYI].body_text  # an English contact reads the rates' English titles
        assert "Contractors, ranked" in english and "Registration rate" in english and "报到率" not in english
        assert "各承训单位情况" in province.body_text
        jia = _expected(SCHOOLS)[JIA]
        line = next(x for x in province.body_text.splitlines() if JIA in x)
        assert f"报到率 {100 * jia['registration'][0] / 6:.1f}%（{jia['registration'][0]}/6）" in line
        assert f"选送率 {100 * jia['selection'][0] / 6:.1f}%（{jia['selection'][0]}/6）" in line
        assert province.body_html is not None and JIA in province.body_html
        # 郑州's bulletin: only the contractors' schools in 郑州 (中原区's two schools)
        zhengzhou = [c for c in SCHOOLS if c.startswith("410102")]
        for name, rates in _expected(zhengzhou).items():
            line = next(x for x in city.body_text.splitlines() if name in x)
            n, d = rates["registration"]
            assert f"学校 {d} 所" in line and f"（{n}/{d}）" in line
        book = load_workbook(BytesIO(province.attachment or b""))
        assert book.sheetnames == ["通报", "承训单位"]
        rows = [[c.value for c in row] for row in book["承训单位"].iter_rows()]
        header = rows[1]
        by_name = {r[1]: dict(zip(header, r, strict=True)) for r in rows[2:]}
        assert set(by_name) == {JIA, YI}
        for name, rates in _expected(SCHOOLS).items():
            n, d = rates["registration"]
            assert by_name[name]["报到率（分子/分母）"] == f"{n}/{d}"
            assert abs(by_name[name]["报到率"] - n / d) < 1e-9


def test_no_section_without_contractors(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with factory() as s, s.begin():
        henan(s, clock, tmp_path)
        s.add(Contact(scope_code=PROVINCE, level="province", name="省执行办", channel="file",
                      address=str(tmp_path / "out"), lang="zh", active=True))
        s.flush()
        assert contractor_ranking(s, clock, find_plan(s, None)) == []
        assert run_bulletins(s, clock) == 1
    with factory() as s:
        note = s.scalars(select(Notification).where(Notification.kind == "bulletin")).one()
        assert "各承训单位情况" not in note.body_text
        assert load_workbook(BytesIO(note.attachment or b"")).sheetnames == ["通报"]
