"""WeCom group robot (企业微信群机器人), markdown messages.

The address is the webhook URL with its ``key``; there is no signing. Markdown content may be at
most 4096 UTF-8 bytes (WeCom robot docs; plain text 2048), so longer content is cut at a
character boundary with a note — the dispatcher's merging never builds messages above the cap.
Errors come as ``errcode`` in an HTTP 200 body; 45009 is the 20/min frequency limit.
"""

from __future__ import annotations

from notifications.channels.http import post_json, redact, truncate_utf8
from notifications.message import DeliveryError, OutgoingMessage

MAX_BYTES = 4096
RETRYABLE = {45009, 45033, -1}


class WeComChannel:
    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def send(self, msg: OutgoingMessage) -> None:
        body = msg.chat_body
        if msg.subject and not body.lstrip().startswith("#"):
            body = f"**{msg.subject}**\n\n{body}"
        content = truncate_utf8(body, MAX_BYTES, "\n……（内容过长已截断 / truncated）")
        payload = {"msgtype": "markdown", "markdown": {"content": content}}
        answer = post_json(msg.address, payload, self.timeout)
        code = answer.get("errcode", 0)
        if code == 0:
            return
        text = f"WeCom {redact(msg.address)} errcode {code}: {answer.get('errmsg', '')}"
        raise DeliveryError(text, retryable=code in RETRYABLE)
