"""Render digests and bulletins from Jinja2 templates: built-in ones, or an office's own.

* ``StrictUndefined``: a missing variable is an error, never a silently empty cell in a notice
  sent to a hundred schools.
* ``.html`` templates autoescape. HTML escaping does nothing for markdown sent to chat robots
  (LIBRARY-NOTES "Jinja2"), so ``.md`` templates escape every ``{{ value }}`` for markdown by
  default (``finalize``), and the ``md`` filter does it explicitly (already-escaped text is not
  escaped twice). A school called ``[点我](http://evil)`` stays text.
* An office may put its own templates in an override folder (same names, e.g.
  ``digest.zh.md.j2``, or per kind, ``overdue.zh.md.j2``). Those are written by people outside
  the project, so they run in ``ImmutableSandboxedEnvironment`` (Jinja2 ≥ 3.1.6, CVE-2025-27516)
  with ``*``/``**`` on strings, lists and numbers bounded and the output capped, because the
  sandbox by itself does not stop ``'x' * 10**7``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from engine import RolloutError

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("txt", "html", "md", "subject")
LANGS = ("zh", "en")
KINDS = {"reminder": "digest", "overdue": "digest", "escalation": "digest", "bulletin": "bulletin"}
MAX_OVERRIDE_OUTPUT = 256 * 1024  # characters; a county digest is a few KB, a province's ~100 KB
MAX_SEQUENCE = 100_000  # longest string/list an override may build with * (cf. the sandbox's MAX_RANGE)
MAX_POWER = 10**12


class RenderError(RolloutError):
    """A template could not be rendered (missing variable, bad override, unsafe or too big output)."""


class MdSafe(str):
    """Text already escaped for markdown (or written as markdown on purpose)."""

    __slots__ = ()


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~])")
# List markers and setext underlines only mean something when followed by a space or line end.
_MD_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])(?=\s|$)")


def md_escape(value: Any) -> MdSafe:
    """Escape markdown syntax in a value so it shows literally in a chat message."""
    if isinstance(value, MdSafe):
        return value
    text = " ".join(str(value).splitlines())
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return MdSafe(text)


def pct(value: Any, digits: int = 1) -> MdSafe:
    """0.4567 → '45.7%' (digits and a percent sign: safe in markdown as is)."""
    return MdSafe(f"{float(value) * 100:.{digits}f}%")


def _finalize_md(value: Any) -> Any:
    if value is None or isinstance(value, int | float):
        return value
    return md_escape(value)


class _OfficeSandbox(ImmutableSandboxedEnvironment):
    """The sandbox plus bounds on ``*`` and ``**``, which it leaves unchecked."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(left, int | float) and isinstance(right, int | float) and abs(right) > 64 and abs(left) > 1:
                raise SecurityError("exponent too large in template")
            result = operator.pow(left, right)
            if isinstance(result, int) and abs(result) > MAX_POWER:
                raise SecurityError("number too large in template")
            return result
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                if len(seq) * times > MAX_SEQUENCE:
                    raise SecurityError("template builds a string or list that is too long")
        return operator.mul(left, right)


def _configure(env: Environment, fmt: str) -> Environment:
    env.filters["md"] = md_escape
    env.filters["pct"] = pct
    if fmt == "md":
        env.finalize = _finalize_md
    return env


def _options(loader: BaseLoader, fmt: str) -> dict[str, Any]:
    return dict(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=fmt == "html",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def _builtin_env(fmt: str) -> Environment:
    """One environment per format for the process: Jinja caches compiled templates in it (a sweep
    renders thousands of digests; compiling each time made a 500-reminder sweep take ~8 s). The
    built-in templates ship with the package, so they are not re-checked on disk per render."""
    return _configure(Environment(**_options(FileSystemLoader(TEMPLATES), fmt), auto_reload=False), fmt)


@cache
def _builtin_template(kind: str, lang: str, fmt: str) -> Template | None:
    """The built-in template for (kind, lang, fmt), found once (a per-kind file or the shared one)."""
    env = _builtin_env(fmt)
    for name in template_names(kind, lang, fmt):
        try:
            return env.get_template(name)
        except TemplateNotFound:
            continue
    return None


def _override_env(folder: Path, fmt: str) -> Environment:
    loader = ChoiceLoader([FileSystemLoader(folder), FileSystemLoader(TEMPLATES)])
    return _configure(_OfficeSandbox(**_options(loader, fmt)), fmt)


def template_names(kind: str, lang: str, fmt: str) -> list[str]:
    if kind not in KINDS:
        raise RenderError(f"unknown notification kind {kind!r}; expected one of {sorted(KINDS)}")
    if lang not in LANGS:
        raise RenderError(f"unknown language {lang!r}; expected one of {LANGS}")
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return [f"{kind}.{lang}.{fmt}.j2", f"{KINDS[kind]}.{lang}.{fmt}.j2"]


def _capped(env: Environment, name: str, context: Mapping[str, Any], limit: int) -> str:
    template = env.get_template(name)
    parts: list[str] = []
    size = 0
    for chunk in template.generate(**context):
        size += len(chunk)
        if size > limit:
            raise RenderError(f"template {name} produced more than {limit} characters: stopped")
        parts.append(chunk)
    return "".join(parts)


def render(
    kind: str,
    lang: str,
    fmt: str,
    context: Mapping[str, Any],
    *,
    override_dir: str | Path | None = None,
    max_output: int = MAX_OVERRIDE_OUTPUT,
) -> str:
    """Render the ``fmt`` variant (txt | html | md | subject) of ``kind``'s notice in ``lang``."""
    names = template_names(kind, lang, fmt)
    try:
        if override_dir is not None:
            folder = Path(override_dir)
            for name in names:
                if (folder / name).is_file():
                    out = _capped(_override_env(folder, fmt), name, context, max_output)
                    return _finish(out, fmt)
        template = _builtin_template(kind, lang, fmt)
        if template is not None:
            return _finish(template.render(**context), fmt)
    except SecurityError as exc:
        raise RenderError(f"unsafe template for {kind}/{lang}/{fmt}: {exc}") from exc
    except TemplateError as exc:
        raise RenderError(f"cannot render {kind}/{lang}/{fmt}: {exc}") from exc
    raise RenderError(f"no template for {kind}/{lang}/{fmt}")


def _finish(out: str, fmt: str) -> str:
    if fmt == "subject":
        return " ".join(out.split())
    return out
