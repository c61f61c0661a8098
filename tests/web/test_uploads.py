"""The 导入数据 pages: upload → preview → confirm, per role and scope, through the engine's importers."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from starlette.testclient import TestClient

import service.uploads as uploads_module
import web.multipart as multipart_module
from engine.db import sessions, transaction
from engine.models import AuditEvent, Contact, School, Teacher
from engine.records import ImportJob
from tests.engine.builders import COUNTY, EARLY, OTHER, OTHER_COUNTY
from tests.web.conftest import Site, csrf_of

HEADER = "教师编号,姓名,学校标识码,线上学时,校本实践学时,能力点,提交作品数,测评结果\n"
GOOD = [f"U{i:03d},教师{i},{EARLY[i % 2]},30,28,\"1,5,9\",3,合格\n" for i in range(6)]


def progress_csv(rows: list[str], encoding: str = "gb18030") -> bytes:
    return (HEADER + "".join(rows)).encode(encoding)


@pytest.fixture
def folder(tmp_path: Path, site: Site) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    site.app.state.rollout.uploads = path
    return path


def upload(client: TestClient, body: bytes, name: str = "进度.csv", kind: str = "progress",
           mapping: str | None = None) -> object:
    page = client.get("/imports")
    data = {"csrf": csrf_of(page.text), "kind": kind}
    if mapping:
        data["mapping"] = mapping
    return client.post("/imports", data=data, files={"file": (name, body, "application/octet-stream")})


def job_id(response: object) -> int:
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith("/imports/"), location
    return int(location.rsplit("/", 1)[1])


def count(site: Site, model: type) -> int:
    with transaction(sessions(site.engine)) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def confirm(client: TestClient, job: int) -> object:
    page = client.get(f"/imports/{job}")
    return client.post(f"/imports/{job}/confirm", data={"csrf": csrf_of(page.text)})


def test_gb18030_progress_previews_then_imports_and_is_audited(site: Site, folder: Path) -> None:
    client = site.as_user("county")
    body = progress_csv(GOOD)
    r = upload(client, body)
    assert r.status_code == 303
    job = job_id(r)
    page = client.get(f"/imports/{job}")
    assert page.status_code == 200
    assert "gb18030" in page.text and "可以导入" in page.text and 'id="confirm"' in page.text
    assert "学校标识码" in page.text  # the header as understood
    assert EARLY[0] in page.text and EARLY[1] in page.text  # counts per school
    assert count(site, Teacher) == 0  # the preview wrote nothing
    assert "尚未从网页导入" in client.get("/imports").text
    r = confirm(client, job)
    assert r.status_code == 303
    assert count(site, Teacher) == 6
    with transaction(sessions(site.engine)) as s:
        stored = s.get(ImportJob, job)
        assert stored is not None and stored.state == "imported" and stored.inserted == 6
        event = s.scalars(select(AuditEvent).where(AuditEvent.chain == f"import:{job}")).one()
        assert event.actor == "county" and event.trigger == "import_progress"
        import hashlib
        assert hashlib.sha256(body).hexdigest() in (event.reason or "")
        assert event.gates[0]["file"] == "进度.csv" and event.gates[0]["inserted"] == 6
    as_of = re.search(r'<p id="as-of">(.*?)</p>', client.get("/imports").text)
    assert as_of and "2021-07-01 09:00 · 进度.csv · county" in as_of.group(1)  # 数据截至: when, file, who
    province = re.search(r'<p id="as-of">(.*?)</p>', site.as_user("prov").get("/imports").text)
    assert province and "尚未从网页导入" in province.group(1)  # a county's file is not the province's data
    # Confirming twice imports nothing again.
    r = confirm(client, job)
    assert r.status_code == 303
    assert count(site, AuditEvent.__table__) >= 1
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(func.count()).where(AuditEvent.chain == f"import:{job}")) == 1


def test_the_header_as_understood_names_fields_as_officials_do(site: Site, folder: Path) -> None:
    """A file with the platform's English headers: the preview says which column became 线上学时,
    in Chinese, beside the file's own header (the field ids are for the API)."""
    client = site.as_user("county")
    english = "platform_id,name,school_code,online_hours,practice_hours,points,evidence_count,evidence_result\n"
    page = client.get(f"/imports/{job_id(upload(client, (english + ''.join(GOOD)).encode()))}").text
    assert "<tr><td>线上学时</td><td>online_hours</td><td>4</td></tr>" in page
    assert "<tr><td>学校标识码</td><td>school_code</td><td>3</td></tr>" in page
    assert "<td>online_hours</td><td>online_hours</td>" not in page
    english_page = client.get(f"/imports/{job_id(upload(client, (english + ''.join(GOOD)).encode()))}?lang=en").text
    assert "<tr><td>online hours</td><td>online_hours</td><td>4</td></tr>" in english_page


def test_a_bad_row_and_another_countys_school_are_listed_and_cannot_be_confirmed(site: Site, folder: Path) -> None:
    client = site.as_user("county")
    rows = [*GOOD, f"U900,越界,{OTHER},30,30,\"1,2,3\",3,合格\n", f"U901,坏行,{EARLY[0]},abc,30,\"1,2,3\",3,合格\n"]
    job = job_id(upload(client, progress_csv(rows)))
    page = client.get(f"/imports/{job}")
    assert "有问题" in page.text and 'id="confirm"' not in page.text
    # Row numbers as Excel shows them: header = 1, the 7th data row is row 8.
    assert '<td>8</td><td>3</td><td>学校标识码</td>' in page.text and "不在您的管辖范围内" in page.text
    assert '<td>9</td><td>4</td><td>线上学时</td>' in page.text
    r = confirm(client, job)
    assert r.status_code == 303  # back to the page with the refusal as a flash
    assert "不能导入" in client.get(f"/imports/{job}").text
    assert count(site, Teacher) == 0
    xlsx = client.get(f"/imports/{job}/problems.xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(BytesIO(xlsx.content)).active
    values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    bad = [row for row in values if row and row[0] == 8]
    assert bad and "不在您的管辖范围内" in str(bad[0][1]) and OTHER in bad[0]  # the clerk's row beside its problem


def test_province_may_import_every_county(site: Site, folder: Path) -> None:
    client = site.as_user("prov")
    job = job_id(upload(client, progress_csv([*GOOD, f"U900,外县,{OTHER},30,30,\"1,2,3\",3,合格\n"], "utf-8-sig")))
    assert "utf-8-sig" in client.get(f"/imports/{job}").text
    confirm(client, job)
    assert count(site, Teacher) == 7


def test_xlsx_goes_through_the_same_importer(site: Site, folder: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["某县教师学时统计表"])
    sheet.append(HEADER.strip().split(","))
    sheet.append(["X1", "张三", EARLY[0], 30, 30, "1,2,3", 3, "优秀"])
    sheet.append(["X2", "李四", OTHER, 30, 30, "1,2,3", 3, "优秀"])
    out = BytesIO()
    book.save(out)
    client = site.as_user("county")
    job = job_id(upload(client, out.getvalue(), "进度.xlsx"))
    page = client.get(f"/imports/{job}")
    assert "xlsx" in page.text and '<td>4</td><td>3</td><td>学校标识码</td>' in page.text
    assert count(site, Teacher) == 0


@pytest.mark.parametrize("user", ["school", "sup"])
def test_school_admins_and_supervisors_cannot_upload(site: Site, folder: Path, user: str) -> None:
    client = site.as_user(user)
    assert client.get("/imports").status_code == 403
    assert "/imports" not in client.get("/").text  # no link either
    page = client.get("/")
    r = client.post("/imports", data={"csrf": csrf_of(page.text), "kind": "progress"},
                    files={"file": ("a.csv", progress_csv(GOOD), "text/csv")})
    assert r.status_code == 403
    assert list(folder.iterdir()) == []  # the refused file is not kept
    assert count(site, ImportJob) == 0


def test_another_county_cannot_see_the_job_a_colleague_can(site: Site, folder: Path) -> None:
    job = job_id(upload(site.as_user("county"), progress_csv(GOOD)))
    other = site.as_user("other")
    assert other.get(f"/imports/{job}").status_code == 404
    assert other.get(f"/imports/{job}/problems.xlsx").status_code == 404
    page = other.get("/imports")
    assert other.post(f"/imports/{job}/confirm", data={"csrf": csrf_of(page.text)}).status_code == 404
    assert "进度.csv" not in page.text
    with transaction(sessions(site.engine)) as s:
        from engine.accounts import add_user
        from tests.web.conftest import PASSWORD
        add_user(s, site.clock, username="county2", role="county_office", scope=COUNTY, password=PASSWORD, display_name="同事")
    assert site.as_user("county2").get(f"/imports/{job}").status_code == 200
    assert count(site, Teacher) == 0


def test_without_a_session_nothing_reaches_the_disk(site: Site, folder: Path) -> None:
    r = site.client().post("/imports", data={"kind": "progress"}, files={"file": ("a.csv", progress_csv(GOOD), "text/csv")})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert list(folder.iterdir()) == []


def test_missing_csrf_is_refused_and_the_file_removed(site: Site, folder: Path) -> None:
    client = site.as_user("county")
    r = client.post("/imports", data={"kind": "progress"}, files={"file": ("a.csv", progress_csv(GOOD), "text/csv")})
    assert r.status_code == 403
    assert list(folder.iterdir()) == []


def test_over_the_upload_cap_is_413(site: Site, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multipart_module, "MAX_UPLOAD", 1000)
    monkeypatch.setattr(multipart_module, "UPLOAD_SLACK", 0)
    client = site.as_user("county")
    r = upload(client, progress_csv(GOOD * 20))
    assert r.status_code == 413
    assert list(folder.iterdir()) == []


def test_wrong_type_and_unknown_mapping_are_one_line(site: Site, folder: Path) -> None:
    client = site.as_user("county")
    r = upload(client, b"x", "a.pdf")
    assert r.status_code == 303 and r.headers["location"] == "/imports"
    assert "只能上传 CSV 或 XLSX" in client.get("/imports").text
    r = upload(client, progress_csv(GOOD), mapping="../../etc/passwd")
    assert "没有列名映射" in client.get("/imports").text
    assert list(folder.iterdir()) == []


def test_an_office_mapping_is_chosen_by_name(site: Site, folder: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "office-maps"
    own.mkdir()
    (own / "my-county.yaml").write_text("teachers:\n  platform_id: [研修账号]\n", encoding="utf-8")
    monkeypatch.setenv(uploads_module.MAPPINGS_ENV, str(own))
    client = site.as_user("county")
    assert "my-county" in client.get("/imports").text
    body = progress_csv(GOOD).replace("教师编号".encode("gb18030"), "研修账号".encode("gb18030"))
    job = job_id(upload(client, body, mapping="my-county"))
    assert "研修账号" in client.get(f"/imports/{job}").text
    confirm(client, job)
    assert count(site, Teacher) == 6


def test_a_file_changed_after_its_preview_is_refused(site: Site, folder: Path) -> None:
    client = site.as_user("county")
    job = job_id(upload(client, progress_csv(GOOD)))
    with transaction(sessions(site.engine)) as s:
        stored = s.get(ImportJob, job)
        assert stored is not None
        (folder / stored.stored_name).write_bytes(progress_csv(GOOD[:1]))
    confirm(client, job)
    assert "不一致" in client.get(f"/imports/{job}").text
    assert count(site, Teacher) == 0


def test_schools_and_contacts_of_another_county_are_problems(site: Site, folder: Path) -> None:
    client = site.as_user("county")
    schools = ("学校标识码,学校名称,县区代码,学段,是否农村\n"
               f"3703239999,新学校,{COUNTY},小学,是\n3703029999,外县学校,{OTHER_COUNTY},小学,否\n").encode("gb18030")
    job = job_id(upload(client, schools, "学校.csv", kind="schools"))
    page = client.get(f"/imports/{job}")
    assert '<td>3</td><td>3</td><td>县区代码</td>' in page.text
    good = ("学校标识码,学校名称,县区代码,学段,是否农村\n" f"3703239999,新学校,{COUNTY},小学,是\n").encode()
    job = job_id(upload(client, good, "学校.csv", kind="schools"))
    confirm(client, job)
    with transaction(sessions(site.engine)) as s:
        assert s.get(School, "3703239999") is not None
    contacts = ("scope_code,level,name,channel,address\n"
                f"{COUNTY},county,县办,email,a@example.org\n{OTHER_COUNTY},county,外县,email,b@example.org\n").encode()
    job = job_id(upload(client, contacts, "联系人.csv", kind="contacts"))
    page = client.get(f"/imports/{job}")
    assert '<td>3</td><td>1</td><td>地区或学校代码</td>' in page.text and "不在您的管辖范围内" in page.text
    assert count(site, Contact) == 0
