"""The SMTP channel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifications.channels.email import EmailChannel, SmtpConfig, message_id
from notifications.message import DeliveryError, OutgoingMessage
from notifications.secrets import Secrets
from tests.notifications.notify_servers import SmtpSink, free_port

PASSWORD = "smtp-test-password"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=_authenticator,
                            auth_require_tls=False)
    controller.start()
    yield sink, port
    controller.stop()


def message(**kw: Any) -> OutgoingMessage:
    base: dict[str, Any] = dict(
        channel="email", address="county@example.org", subject="【沂源县提升工程2.0】逾期提醒：3 所学校",
        text="以下 3 所学校已逾期", html="<p>以下 <b>3</b> 所学校已逾期</p>", key="overdue:county:370323:2022-09-01",
        date=datetime(2022, 9, 1, 1, 0, tzinfo=UTC),
    )
    base.update(kw)
    return OutgoingMessage(**base)


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_plain_and_html_parts_and_chinese_subject(smtp: tuple[SmtpSink, int]) -> None:
    sink, port = smtp
    EmailChannel(SmtpConfig("127.0.0.1", port, sender="rollout@example.org"), Secrets({})).send(message())
    [(sender, rcpts, raw)] = sink.messages
    assert sender == "rollout@example.org" and rcpts == ["county@example.org"]
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0].lower()  # RFC 2047 encoded header, not raw UTF-8
    mail = parse(raw)
    assert mail["Subject"] == "【沂源县提升工程2.0】逾期提醒：3 所学校"
    assert mail["Message-ID"] == message_id("overdue:county:370323:2022-09-01")
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "以下 3 所学校已逾期"
    assert html is not None and "<b>3</b>" in html.get_content()


def test_attachment_with_chinese_name(smtp: tuple[SmtpSink, int]) -> None:
    sink, port = smtp
    data = b"PK\x03\x04 fake xlsx bytes \x00\xff"
    EmailChannel(SmtpConfig("127.0.0.1", port), Secrets({})).send(
        message(attachment_name="2022年8月通报.xlsx", attachment=data)
    )
    mail = parse(sink.messages[0][2])
    assert mail.get_content_type() == "multipart/mixed"
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == "2022年8月通报.xlsx"
    assert part.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert part.get_content() == data
    assert mail.get_body(("html",)) is not None


def test_login_uses_the_password_secret(smtp: tuple[SmtpSink, int]) -> None:
    sink, port = smtp
    config = SmtpConfig("127.0.0.1", port, user="rollout")
    EmailChannel(config, Secrets({"ROLLOUT_SECRET_SMTP_PASSWORD": PASSWORD})).send(message())
    assert len(sink.messages) == 1
    with pytest.raises(DeliveryError) as err:
        EmailChannel(config, Secrets({"ROLLOUT_SECRET_SMTP_PASSWORD": "wrong"})).send(message())
    assert not err.value.retryable
    assert len(sink.messages) == 1


def test_refused_recipient_is_not_retryable(smtp: tuple[SmtpSink, int]) -> None:
    sink, port = smtp
    sink.refuse.add("nobody@example.org")
    with pytest.raises(DeliveryError) as err:
        EmailChannel(SmtpConfig("127.0.0.1", port), Secrets({})).send(message(address="nobody@example.org"))
    assert not err.value.retryable
    assert not sink.messages


def test_server_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as err:
        EmailChannel(SmtpConfig("127.0.0.1", free_port(), timeout=2), Secrets({})).send(message())
    assert err.value.retryable


def test_unconfigured_email_is_not_retryable() -> None:
    with pytest.raises(DeliveryError) as err:
        EmailChannel(SmtpConfig.from_env({}), Secrets({})).send(message())
    assert not err.value.retryable


def test_config_from_env() -> None:
    cfg = SmtpConfig.from_env({"ROLLOUT_SMTP_HOST": "smtp.example.org", "ROLLOUT_SMTP_STARTTLS": "1",
                               "ROLLOUT_SMTP_USER": "bot@example.org"})
    assert (cfg.host, cfg.port, cfg.starttls, cfg.sender) == ("smtp.example.org", 587, True, "bot@example.org")
    assert SmtpConfig.from_env({"ROLLOUT_SMTP_HOST": "h", "ROLLOUT_SMTP_SSL": "yes"}).port == 465
