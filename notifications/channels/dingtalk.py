"""DingTalk group robot (钉钉自定义机器人) in signed mode, markdown messages.

The address is the webhook URL with its ``access_token``; ``secret_ref`` names the signing secret
("加签"). DingTalk answers HTTP 200 with ``errcode`` in the body; 130101 means the robot sent more
than 20 messages a minute and is blocked for 10 minutes (LIBRARY-NOTES "Group robots").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time as _time
import urllib.parse
from collections.abc import Callable

from notifications.channels.http import post_json, redact, truncate_utf8
from notifications.message import DeliveryError, OutgoingMessage
from notifications.secrets import Secrets

RATE_LIMITED = 130101
BUSY = -1
# DingTalk documents no hard markdown limit; 18 KB keeps far below its 20 KB request body cap.
MAX_BYTES = 18_000


def sign(secret: str, timestamp_ms: int) -> str:
    """sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{ts}\\n{secret}")))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def _epoch_ms(msg: OutgoingMessage, now: Callable[[], float]) -> int:
    # The dispatcher stamps messages with its clock; robots check the timestamp is within an hour.
    return int(msg.date.timestamp() * 1000) if msg.date else int(now() * 1000)


class DingTalkChannel:
    def __init__(self, secrets: Secrets, timeout: float = 10.0, now: Callable[[], float] = _time.time) -> None:
        self.secrets = secrets
        self.timeout = timeout
        self._now = now

    def url_for(self, msg: OutgoingMessage) -> str:
        if not msg.secret_ref:
            return msg.address
        secret = self.secrets.get(msg.secret_ref)
        if secret is None:
            raise DeliveryError(f"DingTalk signing secret '{msg.secret_ref}' is not configured", retryable=False)
        ts = _epoch_ms(msg, self._now)
        sep = "&" if "?" in msg.address else "?"
        return f"{msg.address}{sep}timestamp={ts}&sign={sign(secret.reveal(), ts)}"

    def send(self, msg: OutgoingMessage) -> None:
        content = truncate_utf8(msg.chat_body, MAX_BYTES, "\n\n……（内容过长已截断 / truncated）")
        payload = {"msgtype": "markdown", "markdown": {"title": msg.subject, "text": content}}
        answer = post_json(self.url_for(msg), payload, self.timeout)
        code = answer.get("errcode", 0)
        if code == 0:
            return
        where = redact(msg.address)
        text = f"DingTalk {where} errcode {code}: {answer.get('errmsg', '')}"
        raise DeliveryError(text, retryable=code in (RATE_LIMITED, BUSY))
