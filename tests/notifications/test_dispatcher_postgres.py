"""Three dispatcher processes on one PostgreSQL outbox: every message delivered exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from engine.clock import FixedClock
from engine.db import make_engine, sessions, upgrade
from engine.models import Notification

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
WORKER = textwrap.dedent("""
    import os, sys
    from datetime import datetime
    from engine.clock import FixedClock
    from engine.db import make_engine
    from notifications.channels.file import FileChannel
    from notifications.dispatcher import dispatch

    url, journal, name = sys.argv[1], sys.argv[2], sys.argv[3]

    class Journaled(FileChannel):
        # Appends one line per delivery (O_APPEND: lines from three processes never interleave).
        def send(self, msg):
            super().send(msg)
            fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, (msg.key + "\\n").encode())
            finally:
                os.close(fd)

    engine = make_engine(url)
    clock = FixedClock(datetime.fromisoformat("2021-07-01T01:00:00+00:00"))
    idle = 0
    while idle < 3:
        result = dispatch(engine, clock, worker_id=name, batch_size=25, channels={"file": Journaled()})
        idle = idle + 1 if result.claimed == 0 else 0
    engine.dispose()
""")


def test_three_processes_deliver_1000_messages_exactly_once(pg_schema: Any, tmp_path: Path) -> None:
    engine = make_engine(pg_schema.url)
    upgrade(engine)
    out = tmp_path / "out"
    now = datetime.fromisoformat("2021-07-01T01:00:00+00:00")
    with engine.begin() as conn:
        conn.execute(insert(Notification), [
            dict(dedupe_key=f"reminder:{i:04d}", kind="reminder", channel="file", address=str(out),
                 subject=f"提醒 {i}", body_text=f"第 {i} 条", body_markdown=f"第 {i} 条", status="pending",
                 attempts=0, next_attempt_at=now, created_at=now)
            for i in range(1000)
        ])
    journal = tmp_path / "journal.txt"
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, pg_schema.url, str(journal), f"worker-{n}"], cwd=REPO)
        for n in range(3)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0, 0]

    deliveries = Counter(journal.read_text().split())
    assert len(deliveries) == 1000
    assert deliveries.most_common(1)[0][1] == 1  # nobody delivered twice
    assert len(list(out.iterdir())) == 1000
    with sessions(engine)() as session:
        by_status = dict(session.execute(select(Notification.status, func.count()).group_by(Notification.status)).all())
        workers = {(c or "").split(":", 1)[0] for c in session.scalars(select(Notification.claimed_by))}
    assert by_status == {"sent": 1000}
    assert workers <= {"worker-0", "worker-1", "worker-2"}
    engine.dispose()


def test_a_dispatcher_skips_the_rows_another_is_claiming_instead_of_waiting(pg_template: Any, tmp_path: Path) -> None:
    """docs/notifications.md, Delivery 1: on PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP
    LOCKED``, so a dispatcher takes the due rows nobody is claiming at that moment, at once, and
    leaves the rows another dispatcher's claim holds locked to that one. (A claim that waited for
    the lock would stop here: the session allows no lock wait longer than 3 seconds.)"""
    from notifications.channels.file import FileChannel
    from notifications.dispatcher import dispatch

    name, url = pg_template.clone()
    impatient = make_engine(f"{url}?options=-clock_timeout%3D3000")
    other = make_engine(url)
    try:
        out = tmp_path / "out"
        now = datetime.fromisoformat("2021-07-01T01:00:00+00:00")
        with other.begin() as conn:
            conn.execute(insert(Notification), [
                dict(dedupe_key=f"reminder:{i}", kind="reminder", channel="file", address=str(out), subject=f"提醒 {i}",
                     body_text=f"第 {i} 条", status="pending", attempts=0, next_attempt_at=now, created_at=now)
                for i in range(10)
            ])
            ids = list(conn.scalars(select(Notification.id).order_by(Notification.id)))
        clock = FixedClock(now)
        with other.connect() as claiming:  # another dispatcher between its SELECT … FOR UPDATE and its UPDATE
            with claiming.begin():
                held = set(claiming.scalars(
                    select(Notification.id).where(Notification.id.in_(ids[:4])).with_for_update()))
                result = dispatch(impatient, clock, worker_id="b", batch_size=10, channels={"file": FileChannel()})
                assert (result.claimed, result.sent) == (6, 6)
                with sessions(impatient)() as session:
                    sent = set(session.scalars(select(Notification.id).where(Notification.status == "sent")))
                assert sent == set(ids) - held
        result = dispatch(impatient, clock, worker_id="b", batch_size=10, channels={"file": FileChannel()})
        assert (result.claimed, result.sent) == (4, 4)  # released: the other claim never happened
    finally:
        impatient.dispose()
        other.dispose()
        pg_template.drop(name)
