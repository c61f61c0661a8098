"""``rollout audit``: list, export, verify (with exit codes), keygen and checkpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import text

from cli.main import main
from engine.audit import append_event
from engine.db import make_engine, sessions, transaction

T0 = datetime(2021, 7, 1, 1, 0, tzinfo=UTC)


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)


def seed(db_url: str, n: int = 3) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            for i in range(n):
                append_event(s, chain="run:1", at=T0 + timedelta(days=i), actor="县项目办", role="county",
                             trigger="advance", run_id=1, school_code="3703230001", reason=f"第{i + 1}步")
            append_event(s, chain="plan:1", at=T0, actor="省项目办", role="province", trigger="plan_loaded", plan_id=1)
    finally:
        engine.dispose()


def real_seed(db_url: str, tmp_path: Path) -> tuple[int, int]:
    """A real plan (one chain per run and one for the plan) and three transitions on run:1, so the
    state check has a database to compare with; returns (chains, events)."""
    from engine.clock import FixedClock
    from engine.runs import fire
    from tests.engine.builders import COUNTY_OFFICER, PILOT, seed_with_plan

    clock = FixedClock(T0)
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            seed_with_plan(s, clock, tmp_path)
        for trigger in ("suspend", "resume", "suspend"):
            clock.advance(timedelta(days=1))
            with transaction(sessions(engine)) as s:
                fire(s, clock, school_code=PILOT, trigger=trigger, actor=COUNTY_OFFICER, reason="合校")
        with engine.connect() as conn:
            chains, events = conn.execute(text("SELECT count(DISTINCT chain), count(*) FROM audit_event")).one()
    finally:
        engine.dispose()
    return int(chains), int(events)


def tamper(db_url: str, statement: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
                conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))
            else:
                conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            conn.execute(text(statement))
    finally:
        engine.dispose()


def test_list_table_and_json(db_url: str) -> None:
    seed(db_url)
    got = run(db_url, "audit", "list", "--school", "3703230001", "--since", "2021-07-02")
    assert got.exit_code == 0, got.output
    assert "时间" in got.stdout and "操作人" in got.stdout
    assert "2021-07-02 09:00:00" in got.stdout and "2021-07-01 09:00:00" not in got.stdout
    listed = json.loads(run(db_url, "audit", "list", "--json", "--until", "2021-07-01").stdout)
    assert sorted(e["chain"] for e in listed) == ["plan:1", "run:1"]  # a bare --until date includes that day
    assert run(db_url, "audit", "list", "--since", "yesterday").exit_code == 2


def test_export_csv_json_and_file(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    got = run(db_url, "audit", "export", "--trigger", "advance")
    assert got.exit_code == 0, got.output
    assert got.stdout.startswith("\ufeff时间,审计链,序号,学校标识码,学校")
    assert got.stdout_bytes.count(b"\r\n") == 4
    as_json = json.loads(run(db_url, "audit", "export", "--format", "json", "--limit", "1").stdout)
    assert len(as_json) == 1 and as_json[0]["at_local"] == "2021-07-01 09:00:00"
    out = tmp_path / "audit.csv"
    saved = run(db_url, "--lang", "en", "audit", "export", "--output", str(out))
    assert saved.exit_code == 0
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfTime,Chain")
    assert "县项目办".encode() in data
    assert "Exported 4" in saved.stderr


def test_verify_ok_and_failing(db_url: str, tmp_path: Path) -> None:
    chains, events = real_seed(db_url, tmp_path)
    ok = run(db_url, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert f"{chains} 条链、{events} 条记录" in ok.stdout and "通过" in ok.stdout
    tamper(db_url, "DELETE FROM audit_event WHERE chain = 'run:1' AND seq = 2")
    bad = run(db_url, "audit", "verify")
    assert bad.exit_code == 1
    assert "[deleted]" in bad.stdout and "run:1 第 2 条已被删除" in bad.stdout
    report = json.loads(run(db_url, "audit", "verify", "--json").stdout)
    assert report["ok"] is False
    assert [(p["chain"], p["seq"], p["kind"]) for p in report["chains"]["problems"]] == [("run:1", 2, "deleted")]


def test_keygen_checkpoint_and_verify_against_it(db_url: str, tmp_path: Path) -> None:
    real_seed(db_url, tmp_path)
    private, public, cp = tmp_path / "k.pem", tmp_path / "k.pub", tmp_path / "cp.json"
    made = run(db_url, "audit", "keygen", "--private", str(private), "--public", str(public))
    assert made.exit_code == 0 and "sha256:" in made.stdout
    assert run(db_url, "audit", "keygen", "--private", str(private), "--public", str(public)).exit_code == 1
    signed = run(db_url, "--now", "2021-08-01T10:00", "audit", "checkpoint", "--key", str(private), "--output", str(cp))
    assert signed.exit_code == 0, signed.output
    assert json.loads(cp.read_text(encoding="utf-8"))["created_at"] == "2021-08-01T02:00:00.000000Z"
    ok = run(db_url, "audit", "verify", "--checkpoint", str(cp), "--public-key", str(public))
    assert ok.exit_code == 0, ok.output
    assert run(db_url, "audit", "verify", "--checkpoint", str(cp)).exit_code == 2

    tamper(db_url, "DELETE FROM audit_event WHERE chain = 'run:1' AND seq = 4")  # cut the tail
    alone = run(db_url, "audit", "verify")
    assert alone.exit_code == 1  # the chain alone cannot tell, but the run's stage no longer agrees with it
    assert "[deleted]" not in alone.stdout and "[state]" in alone.stdout
    cut = run(db_url, "--lang", "en", "audit", "verify", "--checkpoint", str(cp), "--public-key", str(public))
    assert cut.exit_code == 1
    assert "[tail_deleted] chain run:1 event 4 was deleted" in cut.stdout


def test_checkpoint_refuses_to_sign_a_broken_trail(db_url: str, tmp_path: Path) -> None:
    real_seed(db_url, tmp_path)
    private, public, cp = tmp_path / "k.pem", tmp_path / "k.pub", tmp_path / "cp.json"
    run(db_url, "audit", "keygen", "--private", str(private), "--public", str(public))
    tamper(db_url, "UPDATE audit_event SET actor = '别人' WHERE chain = 'run:1' AND seq = 1")
    got = run(db_url, "audit", "checkpoint", "--key", str(private), "--output", str(cp))
    assert got.exit_code == 1
    assert "拒绝" in got.stderr
    assert not cp.exists()


def test_list_and_export_show_titles_not_ids(db_url: str, tmp_path: Path) -> None:
    """docs/workflow-files.md says titles show in the audit trail; list and the Chinese-header export
    showed county_office, suspend, pilot (issue 17, 18). JSON keeps the ids for programs."""
    real_seed(db_url, tmp_path)
    listed = run(db_url, "audit", "list", "--trigger", "suspend")
    assert listed.exit_code == 0, listed.output
    assert "县级项目办" in listed.stdout and "暂停推进" in listed.stdout and "试点    暂停" in listed.stdout
    assert "county_office" not in listed.stdout and " suspend " not in listed.stdout
    exported = run(db_url, "audit", "export", "--trigger", "suspend").stdout
    assert "暂停推进" in exported and "county_office" not in exported
    english = run(db_url, "--lang", "en", "audit", "export", "--trigger", "suspend").stdout
    assert "County project office" in english and "Suspend" in english
    as_json = json.loads(run(db_url, "audit", "list", "--json", "--trigger", "suspend").stdout)
    assert {e["role"] for e in as_json} == {"county_office"}


def test_keygen_and_checkpoint_create_missing_folders(db_url: str, tmp_path: Path) -> None:
    """`--private secrets/…` and `--output checkpoints/…` printed tracebacks when the folder did not
    exist (issue 17, 10); the file is written one line per chain head (issue 17, 17)."""
    chains, _ = real_seed(db_url, tmp_path)
    private, public = tmp_path / "secrets" / "k.pem", tmp_path / "keys" / "k.pub"
    cp = tmp_path / "checkpoints" / "2021" / "cp.json"
    assert run(db_url, "audit", "keygen", "--private", str(private), "--public", str(public)).exit_code == 0
    assert private.stat().st_mode & 0o777 == 0o600 and private.parent.stat().st_mode & 0o077 == 0
    signed = run(db_url, "audit", "checkpoint", "--key", str(private), "--output", str(cp))
    assert signed.exit_code == 0, signed.output
    lines = cp.read_text(encoding="utf-8").splitlines()
    assert sum('"chain":' in line for line in lines) == chains
    assert all(line.count('"chain":') <= 1 for line in lines)
    assert run(db_url, "audit", "verify", "--checkpoint", str(cp), "--public-key", str(public)).exit_code == 0
    blocked = tmp_path / "file"
    blocked.write_text("x")
    refused = run(db_url, "audit", "keygen", "--private", str(blocked / "k.pem"), "--public", str(tmp_path / "p.pub"))
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.stderr.strip().count("\n") == 0 and str(blocked) in refused.stderr
