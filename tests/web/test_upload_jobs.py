"""Big uploads run on the worker thread: progress on the page, result kept, other pages answer meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import service.upload_jobs as jobs_module
import web.uploads as uploads_module
from engine.db import sessions, transaction
from engine.models import Teacher
from engine.records import ImportJob
from tests.web.conftest import Site, csrf_of
from tests.web.test_uploads import GOOD, count, job_id, progress_csv, upload


@pytest.fixture
def folder(tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    site.app.state.rollout.uploads = path
    monkeypatch.setattr(uploads_module, "BACKGROUND_BYTES", 100)  # every test file counts as big
    return path


@pytest.fixture
def threads(site: Site) -> None:
    """The worker as a thread, so a test can hold it mid-file (the default is a child process)."""
    state = site.app.state.rollout
    state.jobs = jobs_module.JobRunner("", state.sessions, state.clock, state.upload_folder, processes=False)


def state_of(site: Site, job: int) -> str:
    with transaction(sessions(site.engine)) as s:
        row = s.get(ImportJob, job)
        assert row is not None
        return row.state


def wait(site: Site, job: int, *states: str) -> str:
    deadline = time.monotonic() + 120  # a liveness wait, not a timing: a child process starts slowly on a loaded machine
    while time.monotonic() < deadline:
        state = state_of(site, job)
        if state in states:
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} still {state_of(site, job)}")


def test_a_big_file_is_read_and_imported_in_the_background(site: Site, folder: Path, threads: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real = jobs_module.preview_upload

    def slow_preview(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        progress(4)  # rows read so far, as the importer reports them
        assert gate.wait(30)
        return real(*args, progress=progress, **kwargs)

    monkeypatch.setattr(jobs_module, "preview_upload", slow_preview)
    client = site.as_user("county")
    job = job_id(upload(client, progress_csv(GOOD)))
    page = client.get(f"/imports/{job}")
    assert 'http-equiv="refresh"' in page.text and 'id="rows-read">4<' in page.text and 'id="share">66%' in page.text
    assert client.get("/").status_code == 200  # the site answers while the file is read
    assert site.as_user("other").get(f"/imports/{job}").status_code == 404
    gate.set()
    assert wait(site, job, "ready", "problems") == "ready"
    # The browser was closed meanwhile: a new sign-in finds the result on the job's page.
    later = site.as_user("county")
    page = later.get(f"/imports/{job}")
    assert "可以导入" in page.text and 'http-equiv="refresh"' not in page.text
    r = later.post(f"/imports/{job}/confirm", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    assert wait(site, job, "imported", "failed") == "imported"
    assert count(site, Teacher) == 6
    again = later.post(f"/imports/{job}/confirm", data={"csrf": csrf_of(later.get(f"/imports/{job}").text)})
    assert again.status_code == 303 and "已经导入过了" in later.get(f"/imports/{job}").text


def test_a_background_job_that_breaks_says_so(site: Site, folder: Path, threads: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs_module, "preview_upload", broken)
    client = site.as_user("county")
    job = job_id(upload(client, progress_csv(GOOD)))
    assert wait(site, job, "failed") == "failed"
    assert "内部错误" in client.get(f"/imports/{job}").text


def test_the_default_worker_is_a_child_process(site: Site, folder: Path) -> None:
    """As `rollout serve` runs it: the preview and the commit in a spawned process of their own."""
    client = site.as_user("county")
    job = job_id(upload(client, progress_csv(GOOD)))
    assert wait(site, job, "ready", "problems", "failed") == "ready"
    page = client.get(f"/imports/{job}")
    client.post(f"/imports/{job}/confirm", data={"csrf": csrf_of(page.text)})
    assert wait(site, job, "imported", "failed") == "imported"
    assert count(site, Teacher) == 6
    # The progress file is gone: the worker removes it just after its transaction commits (it marks
    # the job as owned until then), so on a loaded machine the page may say 导入完成 a moment first.
    deadline = time.monotonic() + 30
    while any(p.suffix == ".progress" for p in folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(p.suffix == ".progress" for p in folder.iterdir())
