"""A big progress upload is parsed once: the worker's preview keeps its checked rows and the commit
merges them.

Asserted by behaviour: a kept row changed after the preview is what the commit writes (the file
was not read again); a file changed on disk is still refused by its SHA-256; what moved in the
database since the preview (a school now outside the county) is still a problem; without kept
rows the commit reads the file as before.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select, text, update

from engine.db import transaction
from engine.imports import kept_keys, kept_rows
from engine.imports.kept import kept_table
from engine.models import School, Teacher
from engine.records import ImportJob
from service.uploads import kept_key
from tests.engine.builders import EARLY, OTHER_COUNTY
from tests.web.conftest import Site
from tests.web.test_upload_jobs import folder, threads, wait
from tests.web.test_uploads import GOOD, count, job_id, progress_csv, upload
from tests.web.test_uploads import confirm as post_confirm

__all__ = ["folder", "threads"]  # fixtures (every file counts as big; the worker on a thread)


def uploaded(client, body: bytes, site: Site) -> int:  # type: ignore[no-untyped-def]
    """A big upload previewed by the worker, its kept rows visible (on SQLite the side database
    commits just after the main one: a reader may see the job ready a moment before its rows)."""
    job = job_id(upload(client, body))
    assert wait(site, job, "ready", "problems", "failed") == "ready"
    key, deadline = _key(site, job), time.monotonic() + 30
    while time.monotonic() < deadline:
        with transaction(_web(site)) as s:
            if kept_rows(s.connection(), key):
                break
        time.sleep(0.05)
    return job


def confirm(client, job: int, site: Site) -> None:  # type: ignore[no-untyped-def]
    post_confirm(client, job)
    wait(site, job, "imported", "failed")


def _web(site: Site):  # type: ignore[no-untyped-def]
    """Sessions on the web's own engine: the one with the kept side database attached."""
    return site.app.state.rollout.sessions


def _key(site: Site, job: int) -> str:
    with transaction(_web(site)) as s:
        stored = s.get(ImportJob, job)
        assert stored is not None
        return kept_key(stored)


def test_the_commit_merges_the_rows_kept_by_the_preview(site: Site, folder: Path, threads: None) -> None:
    client = site.as_user("county")
    job = uploaded(client, progress_csv(GOOD), site)
    key = _key(site, job)
    with transaction(_web(site)) as s:
        assert kept_rows(s.connection(), key) == 6  # the preview's checked rows wait for the confirm
        # Changed behind the file's back: only a commit that does not re-read the file writes 31.5.
        s.execute(text(f"UPDATE {kept_table(s.connection(), key)} SET online_hours = 31.5 "
                       "WHERE platform_id = 'U000'"))
    confirm(client, job, site)
    with transaction(_web(site)) as s:
        assert s.get(ImportJob, job).state == "imported"  # type: ignore[union-attr]
        hours = s.scalars(select(Teacher.online_hours).where(Teacher.platform_id == "U000")).one()
        assert hours == 31.5
    assert count(site, Teacher) == 6
    assert gone(site, key)  # merged and dropped by the commit's transaction


def gone(site: Site, key: str) -> bool:
    """Whether the kept rows of ``key`` were dropped (visible a moment after the job's state on SQLite)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with transaction(_web(site)) as s:
            if key not in kept_keys(s.connection()):
                return True
        time.sleep(0.05)
    return False


def test_a_tampered_file_is_refused_even_with_kept_rows(site: Site, folder: Path, threads: None) -> None:
    client = site.as_user("county")
    job = uploaded(client, progress_csv(GOOD), site)
    with transaction(_web(site)) as s:
        stored = s.get(ImportJob, job)
        assert stored is not None
        body = progress_csv(GOOD).replace(b",30,", b",40,", 1)  # same size, other bytes
        (folder / stored.stored_name).write_bytes(body)
    confirm(client, job, site)
    assert "不一致" in client.get(f"/imports/{job}").text
    assert count(site, Teacher) == 0


def test_a_school_moved_out_of_the_county_since_the_preview_fails_the_commit(site: Site, folder: Path, threads: None) -> None:
    client = site.as_user("county")
    job = uploaded(client, progress_csv(GOOD), site)
    with transaction(_web(site)) as s:
        s.execute(update(School).where(School.code == EARLY[1]).values(county_code=OTHER_COUNTY))
    confirm(client, job, site)
    page = client.get(f"/imports/{job}").text
    assert EARLY[1] in page and "不在您的管辖范围内" in page
    assert count(site, Teacher) == 0  # all or nothing: the other school's rows were not written either
    with transaction(_web(site)) as s:
        assert s.get(ImportJob, job).state == "failed"  # type: ignore[union-attr]
    assert gone(site, _key(site, job))


def test_without_kept_rows_the_commit_reads_the_file_again(site: Site, folder: Path, threads: None) -> None:
    client = site.as_user("county")
    job = uploaded(client, progress_csv(GOOD), site)
    key = _key(site, job)
    with transaction(_web(site)) as s:
        s.execute(text(f"DROP TABLE {kept_table(s.connection(), key)}"))
    confirm(client, job, site)
    with transaction(_web(site)) as s:
        assert s.get(ImportJob, job).state == "imported"  # type: ignore[union-attr]
    assert count(site, Teacher) == 6


def test_rows_no_job_waits_for_are_dropped_at_the_next_preview(site: Site, folder: Path, threads: None) -> None:
    client = site.as_user("county")
    first = uploaded(client, progress_csv(GOOD), site)
    with transaction(_web(site)) as s:
        s.execute(update(ImportJob).where(ImportJob.id == first).values(state="failed"))
    second = uploaded(client, progress_csv(GOOD[:3]), site)
    with transaction(_web(site)) as s:
        assert kept_keys(s.connection()) == [_key(site, second)]


def test_a_small_file_previewed_in_the_request_keeps_nothing(site: Site, tmp_path: Path) -> None:
    """Read again at its commit in a moment; keeping rows would make the request wait for a big
    preview holding the side database's write lock."""
    site.app.state.rollout.uploads = tmp_path
    client = site.as_user("county")
    job = job_id(upload(client, progress_csv(GOOD)))
    with transaction(_web(site)) as s:
        assert s.get(ImportJob, job).state == "ready"  # type: ignore[union-attr]
        assert kept_keys(s.connection()) == []
    post_confirm(client, job)
    assert count(site, Teacher) == 6
