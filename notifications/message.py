"""What a channel is asked to deliver, and how it says it could not.

Channels never see database rows: the dispatcher turns one outbox row (or several merged rows for
one robot) into an :class:`OutgoingMessage`, so channels stay testable against real servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from engine import RolloutError


@dataclass(frozen=True)
class OutgoingMessage:
    """One delivery. ``key`` is the outbox dedupe key (or keys joined, when merged): it names the
    file of the file channel and the Message-ID of an email, so a repeat is recognisable."""

    channel: str
    address: str
    subject: str
    text: str
    html: str | None = None
    markdown: str | None = None
    secret_ref: str | None = None
    attachment_name: str | None = None
    attachment: bytes | None = field(default=None, repr=False)
    key: str = ""
    date: datetime | None = None

    @property
    def chat_body(self) -> str:
        """What a chat robot shows: the markdown variant when there is one, else the plain text."""
        return self.markdown if self.markdown is not None else self.text


class DeliveryError(RolloutError):
    """A send failed. ``retryable`` says whether trying again later can help (timeouts, 5xx,
    rate limits) or only a human can (bad address, bad token, refused recipient)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(Protocol):
    """A way to reach someone. ``send`` returns only when the far end accepted the message."""

    def send(self, msg: OutgoingMessage) -> None: ...
