"""Upload jobs cut off by a restart: found at start-up or when their page is opened, marked failed
with a clear message, nothing written, and retried from the stored file without uploading again."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

import service.upload_jobs as jobs_module
from engine.db import sessions, transaction
from engine.models import Teacher
from engine.records import ImportJob
from service import recover_jobs
from tests.web.conftest import Site, csrf_of
from tests.web.test_upload_jobs import folder, threads, wait
from tests.web.test_uploads import GOOD, count, job_id, progress_csv, upload

__all__ = ["folder", "threads"]  # fixtures, imported for the tests below


def _dead_owner() -> str:
    """The owner line of a process that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return f"{proc.pid}:1@{socket.gethostname()}"


def _stored(site: Site, job: int) -> ImportJob:
    with transaction(sessions(site.engine)) as s:
        row = s.get(ImportJob, job)
        assert row is not None
        s.expunge(row)
        return row


def _orphan(site: Site, folder: Path, job: int) -> None:
    """As a restart leaves it: the job still says committing, its worker's process is gone."""
    stored = _stored(site, job)
    (folder / f"{stored.stored_name}.progress").write_text(f"0 0 {_dead_owner()}")


def test_an_interrupted_commit_is_failed_on_its_page_and_retried(site: Site, folder: Path, threads: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client = site.as_user("county")
    job = job_id(upload(client, progress_csv(GOOD)))
    assert wait(site, job, "ready", "problems") == "ready"
    runner = site.app.state.rollout.jobs
    monkeypatch.setattr(runner, "submit", lambda *a, **k: None)  # the confirm is queued, then the server dies
    page = client.get(f"/imports/{job}")
    assert client.post(f"/imports/{job}/confirm", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert _stored(site, job).state == "committing"
    _orphan(site, folder, job)
    page = client.get(f"/imports/{job}")
    assert "导入中断" in page.text and "未写入任何数据" in page.text and 'id="retry"' in page.text
    assert _stored(site, job).state == "failed"
    assert count(site, Teacher) == 0
    monkeypatch.undo()  # the restarted server's worker runs again
    site.app.state.rollout.uploads = folder
    assert client.post(f"/imports/{job}/retry", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert wait(site, job, "ready", "problems") == "ready"
    page = client.get(f"/imports/{job}")
    client.post(f"/imports/{job}/confirm", data={"csrf": csrf_of(page.text)})
    assert wait(site, job, "imported", "failed") == "imported"
    assert count(site, Teacher) == 6


def test_start_up_fails_only_the_jobs_whose_worker_is_gone(site: Site, folder: Path, threads: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site.app.state.rollout.jobs, "submit", lambda *a, **k: None)  # held, never run
    client = site.as_user("county")
    alive = job_id(upload(client, progress_csv(GOOD)))  # held by this (live) process
    gone = job_id(upload(client, progress_csv(GOOD[:3])))
    lost = job_id(upload(client, progress_csv(GOOD[:2])))
    _orphan(site, folder, gone)
    (folder / f"{_stored(site, lost).stored_name}.progress").unlink()  # never even started
    state = site.app.state.rollout
    assert sorted(recover_jobs(state.sessions, state.clock, folder)) == sorted([gone, lost])
    assert _stored(site, alive).state == "reading"
    assert _stored(site, gone).state == "failed" and "导入中断" in _stored(site, gone).problems[0]["message"]
    assert not (folder / f"{_stored(site, gone).stored_name}.progress").exists()


def test_only_a_failed_job_may_be_retried_and_only_by_its_office(site: Site, folder: Path, threads: None) -> None:
    client = site.as_user("county")
    job = job_id(upload(client, progress_csv(GOOD)))
    assert wait(site, job, "ready", "problems") == "ready"
    page = client.get(f"/imports/{job}")
    r = client.post(f"/imports/{job}/retry", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and _stored(site, job).state == "ready"
    assert "只有失败的导入可以重新读取" in client.get(f"/imports/{job}").text
    other = site.as_user("other")
    r = other.post(f"/imports/{job}/retry", data={"csrf": csrf_of(other.get("/imports").text)})
    assert r.status_code == 404
    assert client.post(f"/imports/{job}/retry", data={}).status_code in (400, 403)  # no CSRF token


def test_a_progress_file_without_an_owner_counts_as_gone(tmp_path: Path) -> None:
    assert jobs_module._alive("") is False
    assert jobs_module._alive(jobs_module._me()) is True
    assert jobs_module._alive(_dead_owner()) is False
