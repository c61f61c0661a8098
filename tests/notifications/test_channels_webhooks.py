"""The robot channels against a real local HTTP server that checks signatures like the real ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifications.channels.dingtalk import DingTalkChannel
from notifications.channels.feishu import FeishuChannel
from notifications.channels.wecom import MAX_BYTES as WECOM_MAX
from notifications.channels.wecom import WeComChannel
from notifications.message import DeliveryError, OutgoingMessage
from notifications.secrets import Secrets
from tests.notifications.notify_servers import SECRETS, RobotServer

WHEN = datetime(2021, 7, 1, 1, 0, tzinfo=UTC)


def dt_msg(robot: RobotServer, secret_ref: str | None = "DT_ROBOT", body: str = "**逾期** 3 所学校") -> OutgoingMessage:
    return OutgoingMessage(
        channel="dingtalk", address=f"{robot.base}/robot/send?access_token=tok123", secret_ref=secret_ref,
        subject="逾期提醒", text="plain", markdown=body, key="k1", date=WHEN,
    )


def test_dingtalk_signed_markdown_is_accepted(robot: RobotServer) -> None:
    DingTalkChannel(SECRETS, timeout=2).send(dt_msg(robot))
    [got] = robot.state.accepted
    assert got.query["access_token"] == "tok123"
    assert got.query["timestamp"] == str(int(WHEN.timestamp() * 1000))
    assert got.body == {"msgtype": "markdown", "markdown": {"title": "逾期提醒", "text": "**逾期** 3 所学校"}}


def test_dingtalk_wrong_secret_is_not_retryable(robot: RobotServer) -> None:
    wrong = Secrets({"ROLLOUT_SECRET_DT_ROBOT": "not-the-secret"})
    with pytest.raises(DeliveryError) as err:
        DingTalkChannel(wrong, timeout=2).send(dt_msg(robot))
    assert not err.value.retryable
    assert "310000" in str(err.value)
    assert robot.state.bad_signatures == 1 and not robot.state.accepted


def test_dingtalk_missing_secret_is_not_retryable_and_sends_nothing(robot: RobotServer) -> None:
    with pytest.raises(DeliveryError) as err:
        DingTalkChannel(Secrets({}), timeout=2).send(dt_msg(robot))
    assert not err.value.retryable
    assert robot.state.attempts == 0


@pytest.mark.parametrize(
    ("action", "retryable"),
    [("errcode:130101", True), ("errcode:-1", True), ("http:500", True), ("http:503", True),
     ("http:429", True), ("http:400", False), ("http:404", False), ("errcode:300001", False)],
)
def test_dingtalk_failures_are_classified(robot: RobotServer, action: str, retryable: bool) -> None:
    robot.state.default = action
    with pytest.raises(DeliveryError) as err:
        DingTalkChannel(SECRETS, timeout=2).send(dt_msg(robot))
    assert err.value.retryable is retryable
    assert "tok123" not in str(err.value)  # the access token never lands in last_error


def test_timeout_is_retryable(robot: RobotServer) -> None:
    robot.state.default = "sleep"
    robot.state.sleep_s = 1.0
    with pytest.raises(DeliveryError) as err:
        DingTalkChannel(SECRETS, timeout=0.2).send(dt_msg(robot))
    assert err.value.retryable
    assert not robot.state.accepted


def test_connection_refused_is_retryable(robot_port: RobotServer) -> None:
    with pytest.raises(DeliveryError) as err:
        DingTalkChannel(SECRETS, timeout=1).send(dt_msg(robot_port))
    assert err.value.retryable


def wecom_msg(robot: RobotServer, body: str) -> OutgoingMessage:
    return OutgoingMessage(channel="wecom", address=f"{robot.base}/cgi-bin/webhook/send?key=abc",
                           subject="通报", text=body, markdown=body, key="w1")


def test_wecom_markdown_is_cut_at_4096_bytes_on_a_character_boundary(robot: RobotServer) -> None:
    body = "\n".join(f"第{i}所学校：校本实践逾期" for i in range(600))  # ~ 20 KB of Chinese
    WeComChannel(timeout=2).send(wecom_msg(robot, body))
    [got] = robot.state.accepted
    content = got.body["markdown"]["content"]
    assert got.body["msgtype"] == "markdown"
    assert len(content.encode("utf-8")) <= WECOM_MAX
    assert content.startswith("**通报**")
    assert "截断" in content
    assert "\ufffd" not in content  # no broken character at the cut


@pytest.mark.parametrize(("code", "retryable"), [(45009, True), (93000, False)])
def test_wecom_errcode_in_body(robot: RobotServer, code: int, retryable: bool) -> None:
    robot.state.default = f"errcode:{code}"
    with pytest.raises(DeliveryError) as err:
        WeComChannel(timeout=2).send(wecom_msg(robot, "x"))
    assert err.value.retryable is retryable


def fs_msg(robot: RobotServer) -> OutgoingMessage:
    return OutgoingMessage(channel="feishu", address=f"{robot.base}/open-apis/bot/v2/hook/hooktoken",
                           secret_ref="FS_ROBOT", subject="逾期督办", text="t", markdown="**3** 所学校逾期",
                           key="f1", date=WHEN)


def test_feishu_signed_card_is_accepted(robot: RobotServer) -> None:
    FeishuChannel(SECRETS, timeout=2).send(fs_msg(robot))
    [got] = robot.state.accepted
    assert got.body["timestamp"] == str(int(WHEN.timestamp()))
    assert got.body["msg_type"] == "interactive"
    assert got.body["card"]["header"]["title"]["content"] == "逾期督办"
    assert got.body["card"]["elements"][0]["content"] == "**3** 所学校逾期"


def test_feishu_wrong_secret_is_refused(robot: RobotServer) -> None:
    with pytest.raises(DeliveryError) as err:
        FeishuChannel(Secrets({"ROLLOUT_SECRET_FS_ROBOT": "wrong"}), timeout=2).send(fs_msg(robot))
    assert not err.value.retryable
    assert robot.state.bad_signatures == 1


def test_feishu_frequency_limit_is_retryable(robot: RobotServer) -> None:
    robot.state.default = "errcode:11232"
    with pytest.raises(DeliveryError) as err:
        FeishuChannel(SECRETS, timeout=2).send(fs_msg(robot))
    assert err.value.retryable
