"""Feishu/Lark group robot (飞书自定义机器人), signed, as an interactive card with markdown.

sign = base64(HMAC-SHA256(key=f"{ts}\\n{secret}", msg=b"")) with ``ts`` in seconds — the key and
message are the other way round from DingTalk (LIBRARY-NOTES "Group robots"). Answers carry
``code`` (newer) or ``StatusCode`` (older) in an HTTP 200 body; 11232 is the frequency limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time as _time
from collections.abc import Callable
from typing import Any

from notifications.channels.http import post_json, redact, truncate_utf8
from notifications.message import DeliveryError, OutgoingMessage
from notifications.secrets import Secrets

RETRYABLE = {11232, 9499}
# The request body may not exceed 20 KB; leave room for the card around the content.
MAX_BYTES = 18_000


def sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuChannel:
    def __init__(self, secrets: Secrets, timeout: float = 10.0, now: Callable[[], float] = _time.time) -> None:
        self.secrets = secrets
        self.timeout = timeout
        self._now = now

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        content = truncate_utf8(msg.chat_body, MAX_BYTES, "\n……（内容过长已截断 / truncated）")
        payload: dict[str, Any] = {
            "msg_type": "interactive",
            "card": {
                "header": {"title": {"tag": "plain_text", "content": msg.subject}},
                "elements": [{"tag": "markdown", "content": content}],
            },
        }
        if msg.secret_ref:
            secret = self.secrets.get(msg.secret_ref)
            if secret is None:
                raise DeliveryError(f"Feishu signing secret '{msg.secret_ref}' is not configured", retryable=False)
            ts = int(msg.date.timestamp()) if msg.date else int(self._now())
            payload["timestamp"] = str(ts)
            payload["sign"] = sign(secret.reveal(), ts)
        return payload

    def send(self, msg: OutgoingMessage) -> None:
        answer = post_json(msg.address, self.payload(msg), self.timeout)
        code = answer.get("code", answer.get("StatusCode", 0))
        if code == 0:
            return
        text = f"Feishu {redact(msg.address)} code {code}: {answer.get('msg', answer.get('StatusMessage', ''))}"
        raise DeliveryError(text, retryable=code in RETRYABLE)
