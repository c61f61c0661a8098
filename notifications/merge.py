"""Merge queued messages for one robot into fewer, larger ones instead of waiting for slots.

When a county's sweep queues 45 digests for one DingTalk group, sending them one by one would hit
the 20/min limit and get the robot blocked; packing them into a few long messages (each within the
robot's size cap) delivers everything at once. Messages are only merged when there are more of
them than free slots, so the ordinary case still sends one message per notification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from notifications.message import OutgoingMessage

SEPARATOR = "\n\n---\n\n"


@dataclass(frozen=True)
class Unit:
    """One send: the outbox ids it delivers and the message that carries them."""

    ids: tuple[int, ...]
    message: OutgoingMessage


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _section(msg: OutgoingMessage) -> str:
    body = msg.chat_body
    return body if body.lstrip().startswith("#") else f"**{msg.subject}**\n\n{body}"


def merge_messages(messages: Sequence[OutgoingMessage]) -> OutgoingMessage:
    first = messages[0]
    if len(messages) == 1:
        return first
    body = SEPARATOR.join(_section(m) for m in messages)
    return replace(
        first,
        subject=f"{first.subject} (+{len(messages) - 1})",
        text=body,
        markdown=body,
        html=None,
        key="+".join(m.key for m in messages)[:300],
    )


def pack(units: Sequence[Unit], slots: int, cap_bytes: int) -> tuple[list[Unit], list[Unit]]:
    """Fit ``units`` into at most ``slots`` sends of at most ``cap_bytes`` each.

    Returns (to send now, to defer). Order is kept: the oldest queued messages go first.
    """
    if slots <= 0:
        return [], list(units)
    if len(units) <= slots:
        return list(units), []
    groups: list[list[Unit]] = []
    size = 0
    for unit in units:
        grow = _size(_section(unit.message)) + _size(SEPARATOR)
        if groups and size + grow <= cap_bytes:
            groups[-1].append(unit)
            size += grow
        else:
            groups.append([unit])
            size = grow
    send = [
        Unit(tuple(i for u in group for i in u.ids), merge_messages([u.message for u in group]))
        for group in groups[:slots]
    ]
    deferred = [u for group in groups[slots:] for u in group]
    return send, deferred
