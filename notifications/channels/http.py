"""POST JSON to a robot webhook and classify what went wrong.

The robots answer HTTP 200 even when they refuse a message, with the reason in the body
(LIBRARY-NOTES "Group robots"), so callers must read the body; this module handles the transport:
timeouts, refused connections and 5xx are retryable, other 4xx are not.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from notifications.message import DeliveryError

USER_AGENT = "rollout-notifications/1"


def redact(url: str) -> str:
    """The webhook URL without its query (it carries the access token)."""
    return url.split("?", 1)[0]


def post_json(url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
    )
    where = redact(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - webhook URL from contacts
            body = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response socket open otherwise
        retryable = exc.code >= 500 or exc.code in (408, 429)
        raise DeliveryError(f"HTTP {exc.code} from {where}", retryable=retryable) from exc
    except urllib.error.URLError as exc:
        raise DeliveryError(f"cannot reach {where}: {exc.reason}", retryable=True) from exc
    except TimeoutError as exc:
        raise DeliveryError(f"timeout after {timeout}s waiting for {where}", retryable=True) from exc
    except (ConnectionError, http.client.HTTPException) as exc:
        raise DeliveryError(f"connection to {where} failed: {exc!r}", retryable=True) from exc
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeliveryError(f"{where} answered with something that is not JSON", retryable=True) from exc
    if not isinstance(answer, dict):
        raise DeliveryError(f"{where} answered with unexpected JSON", retryable=True)
    return answer


def truncate_utf8(text: str, limit: int, note: str = "") -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (note included) without splitting a character,
    preferably at a line break, so a Chinese message never ends in a broken byte sequence."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    budget = max(0, limit - len(note.encode("utf-8")))
    cut = raw[:budget].decode("utf-8", errors="ignore")
    newline = cut.rfind("\n")
    if newline > len(cut) // 2:
        cut = cut[: newline + 1]
    return cut + note
