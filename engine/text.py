"""Free text from people — reasons, notes, names — made safe to keep forever and to show anywhere.

Text enters through the CLI, the web forms, the JSON API and imported files, and most of it lands
in the append-only audit trail, where it can never be removed: a 20,000,000-character note made a
190 MB database and a 21 MB audit page. The same text is later printed in terminals, pages, CSV
and XLSX files and chat messages. So, in one place, every entry point:

* removes terminal escape sequences (ANSI CSI/OSC, e.g. ``\\x1b[2J`` clearing an officer's screen
  in ``rollout audit list``) and control characters (C0 except newline in paragraphs, DEL, C1), the
  bidirectional overrides and isolates that make text read differently from what it holds
  ("Trojan source"), zero-width spaces, byte-order marks and lone surrogates (which PostgreSQL
  cannot store);
* caps the length (documented in docs/security.md) and refuses longer text with a clear error
  instead of cutting it silently: a reason cut in half is a different reason.
"""

from __future__ import annotations

import re

from engine.errors import TextRefused
from engine.i18n import tr

MAX_REASON = 2000  # a transition's reason, an extension request or decision
MAX_NOTE = 2000  # a school fact's note
MAX_NAME = 200  # names of schools, regions, people, plans

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, screen clearing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[@-Z\\-_]?"  # two-character escapes, and a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_INVISIBLE = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff"
_PARAGRAPH = re.compile(f"[{_INVISIBLE}]")
_LINE = re.compile(f"[{_INVISIBLE}\\t\\n\\r\u2028\u2029]")
_NEEDS_WORK = re.compile(f"[\\x1b{_INVISIBLE}\\t\\r\u2028\u2029]")


def _cap(text: str, field: str, limit: int) -> str:
    if len(text) > limit:
        raise TextRefused(tr(f"{field}太长：最多 {limit} 个字符，实为 {len(text)} 个",
                             f"{field} is too long: at most {limit} characters, not {len(text)}"))
    return text


def clean_text(value: str | None, field: str, limit: int = MAX_REASON) -> str | None:
    """A paragraph (reason, note): newlines kept (CR LF as LF), tabs as spaces, the rest above
    removed, outer blanks trimmed; None stays None and blank text becomes None."""
    if value is None:
        return None
    text = value
    if _NEEDS_WORK.search(text):
        text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
        text = _PARAGRAPH.sub("", text.replace("\t", " ").replace("\u2028", "\n").replace("\u2029", "\n"))
    text = text.strip()
    return _cap(text, field, limit) if text else None


def clean_line(value: str, field: str, limit: int = MAX_NAME) -> str:
    """One line (a name, a username): line breaks and tabs become spaces, the rest above removed."""
    text = value
    if _NEEDS_WORK.search(text) or "\n" in text:
        text = _LINE.sub(lambda m: " " if m.group() in "\t\n\r\u2028\u2029" else "", _ESCAPES.sub("", text))
    return _cap(text.strip(), field, limit)


def is_clean_line(value: str) -> bool:
    """True when ``clean_line`` would leave ``value`` as it is apart from its length (a fast check
    for million-row imports)."""
    return _NEEDS_WORK.search(value) is None and "\n" not in value and value == value.strip()
