"""The inbox folder the scheduler imports from: each file once, as its account, the result beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.db import sessions, transaction
from engine.models import AuditEvent, Teacher
from engine.records import ImportJob
from service.inbox import scan_inbox
from service.scheduler import run_job
from tests.web.conftest import Site, site
from tests.web.test_uploads import GOOD, HEADER, progress_csv

__all__ = ["site"]  # the fixture, imported for the tests below
BAD = "U900,教师900,3703230002,abc,28,\"1,5,9\",3,合格\n"


@pytest.fixture
def inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROLLOUT_UPLOAD_DIR", str(tmp_path / "uploads"))
    folder = tmp_path / "inbox"
    (folder / "county" / "progress").mkdir(parents=True)
    return folder


def teachers(site: Site) -> int:
    with transaction(sessions(site.engine)) as s:
        return int(s.scalar(select(func.count()).select_from(Teacher)) or 0)


def test_a_file_is_imported_once_and_its_result_kept_beside_it(site: Site, inbox: Path) -> None:
    drop = inbox / "county" / "progress"
    (drop / "进度0701.csv").write_bytes(progress_csv(GOOD))
    result = scan_inbox(site.engine, site.clock, inbox, settle=0)
    assert result.imported == ["county/progress/进度0701.csv"] and teachers(site) == 6
    done = list((drop / "done").glob("*-进度0701.csv"))
    assert len(done) == 1 and not (drop / "进度0701.csv").exists()
    report = done[0].with_name(done[0].name + ".result.txt").read_text(encoding="utf-8")
    assert report.startswith("已导入") and "新增 6" in report
    with transaction(sessions(site.engine)) as s:
        job = s.scalars(select(ImportJob)).one()
        assert (job.username, job.scope_code, job.state) == ("county", "370323", "imported")
        assert s.scalar(select(AuditEvent.trigger).where(AuditEvent.chain == f"import:{job.id}")) == "import_progress"
    # The same bytes dropped again are not imported twice.
    (drop / "again.csv").write_bytes(progress_csv(GOOD))
    again = scan_inbox(site.engine, site.clock, inbox, settle=0)
    assert again.repeated == ["county/progress/again.csv"] and again.imported == []
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(func.count()).select_from(ImportJob)) == 1


def test_a_bad_file_writes_nothing_and_says_why_beside_it_and_in_the_audit(site: Site, inbox: Path) -> None:
    drop = inbox / "county" / "progress"
    (drop / "bad.csv").write_bytes((HEADER + "".join(GOOD) + BAD).encode("gb18030"))
    result = scan_inbox(site.engine, site.clock, inbox, settle=0)
    assert result.failed == ["county/progress/bad.csv"] and teachers(site) == 0
    failed = next((drop / "failed").glob("*-bad.csv.result.txt")).read_text(encoding="utf-8")
    assert "一行都没有写入" in failed and "第 8 行" in failed
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(AuditEvent.trigger).where(AuditEvent.trigger == "inbox_refused")) == "inbox_refused"


def test_scope_unknown_accounts_and_unsettled_files(site: Site, inbox: Path) -> None:
    (inbox / "nobody" / "progress").mkdir(parents=True)
    (inbox / "nobody" / "progress" / "x.csv").write_bytes(progress_csv(GOOD))
    (inbox / "sup" / "progress").mkdir(parents=True)
    (inbox / "sup" / "progress" / "x.csv").write_bytes(progress_csv(GOOD))  # a supervisor may not import
    for old in (inbox / "nobody" / "progress" / "x.csv", inbox / "sup" / "progress" / "x.csv"):
        os.utime(old, (0, 0))
    fresh = inbox / "county" / "progress" / "writing.csv"
    fresh.write_bytes(progress_csv(GOOD))
    result = scan_inbox(site.engine, site.clock, inbox)  # the default settle time: still being written
    assert result.skipped == ["nobody"] and result.failed == ["sup/progress/x.csv"]
    assert fresh.exists() and result.imported == [] and teachers(site) == 0
    assert "未导入" in next((inbox / "sup" / "progress" / "failed").glob("*.result.txt")).read_text(encoding="utf-8")
    os.utime(fresh, (0, 0))
    assert scan_inbox(site.engine, site.clock, inbox).imported == ["county/progress/writing.csv"]


def test_the_scheduler_sweep_reads_the_inbox(site: Site, inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_INBOX", str(inbox))
    path = inbox / "county" / "progress" / "p.csv"
    path.write_bytes(progress_csv(GOOD))
    os.utime(path, (0, 0))
    run_job("sweep", site.engine, site.clock)
    assert teachers(site) == 6
