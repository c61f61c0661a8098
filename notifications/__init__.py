"""Notifications: everything from the outbox table to the recipient.

The sweep decides *what* is due and writes rows into the outbox (``enqueue``); dispatchers
(``dispatch``) deliver them through a channel (email, DingTalk, WeCom, Feishu, a folder) exactly
once in the ordinary case, retrying with backoff and parking dead letters for a human. Built on the
engine's public API only; the service layer (``service``) and the CLI use what is exported here.
"""

from notifications.bulletin_xlsx import bulletin_workbook
from notifications.channels.http import redact
from notifications.contacts import import_contacts
from notifications.dispatcher import DispatchResult, dispatch
from notifications.outbox import (
    STATUSES,
    enqueue,
    enqueue_many,
    list_notifications,
    outgoing,
    retry_dead,
)
from notifications.rendering import render

__all__ = [
    "bulletin_workbook", "redact", "import_contacts", "DispatchResult", "dispatch",
    "STATUSES", "enqueue", "enqueue_many", "list_notifications", "outgoing", "retry_dead", "render",
]
