"""Deliver into a folder: one file per message (``.eml`` for mail-like, ``.md`` for chat).

For offices without mail or robots, and for tests and demos. The address is the folder. The file
name comes from the outbox key, and the write is atomic (temp file + rename), so a resend after a
crash rewrites the same file instead of adding a second one: this channel is idempotent by name.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from notifications.channels.email import build_email
from notifications.message import DeliveryError, OutgoingMessage


def file_name(msg: OutgoingMessage) -> str:
    """Readable and deterministic: a slug of the key plus a short hash that keeps slugs unique."""
    key = msg.key or msg.subject
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "_", key).strip("._")[:80] or "message"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    suffix = ".md" if msg.markdown is not None and not msg.html and msg.attachment is None else ".eml"
    return f"{slug}-{digest}{suffix}"


def render(msg: OutgoingMessage) -> bytes:
    if file_name(msg).endswith(".md"):
        return f"# {msg.subject}\n\n{msg.chat_body}\n".encode()
    return build_email(msg, "rollout@localhost", cte="8bit").as_bytes()


class FileChannel:
    def send(self, msg: OutgoingMessage) -> None:
        folder = Path(msg.address)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / file_name(msg)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(render(msg))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(f"cannot write into {folder}: {exc}", retryable=True) from exc
