"""Contact list import: English or Chinese headers, every bad row reported, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, func, select

from engine.db import sessions, transaction
from engine.errors import ImportFileError
from engine.models import Contact
from notifications.contacts import import_contacts

GOOD = """scope_code,level,name,channel,address,secret_ref,lang
370323,county,沂源县项目办,dingtalk,https://oapi.dingtalk.com/robot/send?access_token=abc,YIYUAN_DT,zh
370323,county,沂源县项目办,email,yiyuan@example.org,,en
3703230001,school,沂源一中,file,/srv/rollout/outbox/3703230001,,
"""


@pytest.fixture(autouse=True)
def regions_and_school(db: Engine) -> None:
    """Contacts are for schools and regions that exist: the region tree and 沂源一中."""
    from tests.engine.builders import PILOT, add_regions, add_school

    with transaction(sessions(db)) as session:
        add_regions(session)
        add_school(session, PILOT)


def count(db: Engine) -> int:
    with sessions(db)() as session:
        return int(session.scalar(select(func.count()).select_from(Contact)) or 0)


def test_english_headers_import_and_reimport_updates(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(GOOD, encoding="utf-8")
    with transaction(sessions(db)) as session:
        result = import_contacts(session, path)
    assert (result.total, result.inserted, result.updated) == (3, 3, 0)
    path.write_text(GOOD.replace("沂源一中,file", "沂源县第一中学,file"), encoding="utf-8")
    with transaction(sessions(db)) as session:
        again = import_contacts(session, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 2)
    with sessions(db)() as session:
        school = session.scalars(select(Contact).where(Contact.level == "school")).one()
        email = session.scalars(select(Contact).where(Contact.channel == "email")).one()
    assert school.name == "沂源县第一中学" and school.lang == "zh"
    assert email.lang == "en" and email.secret_ref is None


def test_chinese_headers_in_xlsx(db: Engine, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["地区或学校代码", "级别", "名称", "渠道", "地址", "密钥名", "语言"])
    sheet.append([370300, "市", "淄博市项目办", "企业微信", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "", "中文"])
    sheet.append(["3703230001", "学校", "沂源一中", "邮件", "yz1@example.org", "", ""])
    path = tmp_path / "联系人.xlsx"
    book.save(path)
    with transaction(sessions(db)) as session:
        assert import_contacts(session, path).inserted == 2
    with sessions(db)() as session:
        city = session.scalars(select(Contact).where(Contact.level == "city")).one()
    assert (city.scope_code, city.channel) == ("370300", "wecom")


def test_every_bad_row_is_reported_and_nothing_is_written(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        GOOD
        + "37032,county,短代码,email,a@example.org,,\n"  # row 5: code has 5 digits
        + "370323,village,村,email,b@example.org,,\n"  # row 6: level
        + "370323,county,某办,sms,13800000000,,\n"  # row 7: channel
        + "370323,county,某办,email,not-an-address,,\n"  # row 8: address
        + "370323,county,某办,wecom,qyapi.weixin.qq.com/x,,\n"  # row 9: robot URL
        + "370323,county,某办,email,c@example.org,SEC abc=,\n"  # row 10: a secret, not a name
        + "370323,county,某办,email,d@example.org,,fr\n"  # row 11: language
        + "370323,county,沂源县项目办,email,yiyuan@example.org,,en\n",  # row 12: duplicates row 3
        encoding="utf-8",
    )
    with pytest.raises(ImportFileError) as err, transaction(sessions(db)) as session:
        import_contacts(session, path)
    lines = sorted(p.line for p in err.value.problems if p.line is not None)
    assert lines == [5, 6, 7, 8, 9, 10, 11, 12]
    fields = {p.line: p.field for p in err.value.problems}
    assert fields[7] == "channel" and fields[10] == "secret_ref" and fields[6] == "level"
    assert count(db) == 0


def test_missing_required_column(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "nochannel.csv"
    path.write_text("scope_code,level,name,address\n370323,county,x,a@example.org\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="channel"), transaction(sessions(db)) as session:
        import_contacts(session, path)


@pytest.mark.parametrize("row,words", [
    ("3703230099,school,无此校,email,a@example.org,,", "学校 3703230099 不存在"),
    ("410102,county,中原区,email,a@example.org,,", "没有county级区划 410102"),
    ("370300,county,淄博市,email,a@example.org,,", "370300 是 city 级"),
])
def test_contacts_for_unknown_schools_and_regions_are_refused(db: Engine, tmp_path: Path, row: str, words: str) -> None:
    """Contacts for unknown schools used to be accepted (issue 12, Low): nobody would ever hear."""
    path = tmp_path / "contacts.csv"
    path.write_text(GOOD + row + "\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=words), transaction(sessions(db)) as session:
        import_contacts(session, path)
    assert count(db) == 0
