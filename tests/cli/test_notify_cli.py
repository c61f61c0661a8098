"""rollout notify send/list/retry and rollout contacts import, on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from engine.db import make_engine, sessions, transaction
from notifications.outbox import enqueue

QUEUED_AT = datetime.fromisoformat("2021-07-01T09:00:00+08:00")


@pytest.fixture
def run(db_url: str) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)

    return invoke


def queue(db_url: str, key: str, channel: str, address: str) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as session:
            enqueue(session, dedupe_key=key, kind="overdue", channel=channel, address=address,
                    subject="逾期提醒", text="正文", markdown="**正文**", now=QUEUED_AT)
    finally:
        engine.dispose()


def test_send_honours_now_and_prints_counts(run: Callable[..., Result], db_url: str, tmp_path: Path) -> None:
    queue(db_url, "overdue:1", "file", str(tmp_path / "out"))
    early = run("--now", "2021-07-01T08:59", "notify", "send")
    assert early.exit_code == 0, early.output
    assert "已送达 0 条" in early.stdout and not (tmp_path / "out").exists()
    sent = run("--now", "2021-07-01T09:00", "notify", "send", "--json")
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout) | {"claimed": 1} == {"claimed": 1, "sent": 1, "messages": 1, "retrying": 0,
                                                       "dead": 0, "deferred": 0}
    assert len(list((tmp_path / "out").iterdir())) == 1
    english = run("--lang", "en", "--now", "2021-07-02", "notify", "send")
    assert "delivered 0 (0 send(s))" in english.stdout


def test_dead_letter_is_listed_and_retried(run: Callable[..., Result], db_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outbox folder should be")
    queue(db_url, "overdue:dead", "file", str(blocker))
    queue(db_url, "overdue:fine", "file", str(tmp_path / "ok"))
    sent = run("--now", "2021-07-01T09:00", "notify", "send", "--max-attempts", "1")
    assert "已送达 1 条" in sent.stdout and "失败 1 条" in sent.stdout

    failed = run("notify", "list", "--failed", "--json")
    [row] = json.loads(failed.stdout)
    assert (row["status"], row["attempts"], row["dedupe_key"]) == ("dead", 1, "overdue:dead")
    assert "not-a-folder" in row["last_error"]
    table = run("notify", "list", "--failed")
    assert "overdue:dead" not in table.stdout.split("\n")[0]
    # words in the Chinese table, not the stored ids (issue 17, 19)
    cells = table.stdout.splitlines()[2].split()
    assert cells[1:4] == ["失败", "逾期", "文件"]
    assert run("--lang", "en", "notify", "list", "--failed").stdout.splitlines()[2].split()[1:4] == ["dead", "overdue", "file"]

    retried = run("--now", "2021-07-01T10:00", "notify", "retry", str(row["id"]), "999999")
    assert retried.exit_code == 0
    assert "已重新排队 1 条通知" in retried.stdout and "未改动" in retried.stderr
    blocker.unlink()
    again = run("--now", "2021-07-01T10:00", "notify", "send")
    assert "已送达 1 条" in again.stdout
    assert json.loads(run("notify", "list", "--failed", "--json").stdout) == []
    assert len(json.loads(run("notify", "list", "--status", "sent", "--json").stdout)) == 2
    assert all(not r["last_error"] for r in json.loads(run("notify", "list", "--json").stdout))  # no stale error


def test_list_hides_robot_tokens(run: Callable[..., Result], db_url: str) -> None:
    queue(db_url, "overdue:robot", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=SECRETTOKEN")
    listed = run("notify", "list")
    assert "oapi.dingtalk.com/robot/send" in listed.stdout and "SECRETTOKEN" not in listed.stdout
    assert "SECRETTOKEN" not in run("notify", "list", "--json").stdout
    assert "没有符合条件的通知" in run("notify", "list", "--status", "dead").stdout


def test_contacts_import(run: Callable[..., Result], db_url: str, tmp_path: Path) -> None:
    from tests.engine.builders import add_regions

    engine = make_engine(db_url)
    with transaction(sessions(engine)) as session:
        add_regions(session)  # contacts are for regions that exist
    engine.dispose()
    good = tmp_path / "contacts.csv"
    good.write_text("地区或学校代码,级别,名称,渠道,地址,密钥名,语言\n"
                    "370323,县,沂源县项目办,钉钉,https://oapi.dingtalk.com/robot/send?access_token=a,YIYUAN_DT,\n",
                    encoding="gb18030")
    ok = run("contacts", "import", str(good))
    assert ok.exit_code == 0, ok.output
    assert "新增 1" in ok.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("scope_code,level,name,channel,address\n1,county,x,fax,1\n370323,town,y,email,z\n", encoding="utf-8")
    refused = run("contacts", "import", str(bad))
    assert refused.exit_code == 1
    assert "bad.csv:2" in refused.stderr and "bad.csv:3" in refused.stderr
    assert "fax" in refused.stderr and "town" in refused.stderr
