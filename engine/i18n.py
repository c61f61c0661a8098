"""User-facing language: Simplified Chinese by default, English on request.

User-facing strings are written as ``tr("中文", "English")`` next to where they are used, so a
message and its translation never drift apart. The CLI sets the language from ``--lang`` or
``ROLLOUT_LANG``; the web layer per request (a context variable, so concurrent requests differ).
"""

from __future__ import annotations

from contextvars import ContextVar

LANGUAGES = ("zh", "en")
_current: ContextVar[str] = ContextVar("rollout_language", default="zh")


def set_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {lang!r}")
    _current.set(lang)


def language() -> str:
    return _current.get()


def tr(zh: str, en: str) -> str:
    return zh if _current.get() == "zh" else en
