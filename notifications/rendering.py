"""Render digests and bulletins from Jinja2 templates: built-in ones, or an office's own.

* ``StrictUndefined``: a missing variable is an error, never a silently empty cell in a notice
  sent to a hundred schools.
* ``.html`` templates autoescape. HTML escaping does nothing for markdown sent to chat robots
  (LIBRARY-NOTES "Jinja2"), so ``.md`` templates escape every ``{{ value }}`` for markdown by
  default (``finalize``), and the ``md`` filter does it explicitly (already-escaped text is not
  escaped twice). A school called ``[点我](http://evil)`` stays text.
* An office may put its own templates in an override folder (same names, e.g.
  ``digest.zh.md.j2``, or per kind, ``overdue.zh.md.j2``): ``rollout sweep/bulletin/scheduler run
  --templates DIR`` or ``ROLLOUT_TEMPLATES``. Those are written by people outside the project, so
  they run in ``ImmutableSandboxedEnvironment`` (Jinja2 ≥ 3.1.6, CVE-2025-27516) with ``*``/``**``
  bounded, in a separate process with capped memory, a deadline and an output cap
  (``notifications/sandbox.py``): the sandbox by itself stops neither ``'x'|center(10**9)`` nor
  nested ``range(100000)`` loops.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    Template,
    TemplateError,
    TemplateNotFound,
)
from jinja2.sandbox import SecurityError

from engine import RolloutError, tr
from notifications.sandbox import TEMPLATES, Renderer, SandboxFailed, configure, options
from notifications.sandbox import MdSafe as MdSafe  # re-exported: the filters templates use
from notifications.sandbox import md_escape as md_escape
from notifications.sandbox import pct as pct

FORMATS = ("txt", "html", "md", "subject")
LANGS = ("zh", "en")
KINDS = {"reminder": "digest", "overdue": "digest", "escalation": "digest", "bulletin": "bulletin", "lapse": "lapse"}
MAX_OVERRIDE_OUTPUT = 256 * 1024  # characters; a county digest is a few KB, a province's ~100 KB
_renderer = Renderer()


class RenderError(RolloutError):
    """A template could not be rendered (missing variable, bad override, unsafe, too big or too slow)."""


def _configure(env: Environment, fmt: str) -> Environment:
    return configure(env, fmt)


def _options(loader: BaseLoader, fmt: str) -> dict[str, Any]:
    return options(loader, fmt)


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


def template_names(kind: str, lang: str, fmt: str) -> list[str]:
    if kind not in KINDS:
        raise RenderError(f"unknown notification kind {kind!r}; expected one of {sorted(KINDS)}")
    if lang not in LANGS:
        raise RenderError(f"unknown language {lang!r}; expected one of {LANGS}")
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return [f"{kind}.{lang}.{fmt}.j2", f"{KINDS[kind]}.{lang}.{fmt}.j2"]


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
                    try:  # in the bounded child process (notifications/sandbox.py)
                        out = _renderer.render(folder, name, fmt, context, max_output)
                    except SandboxFailed as exc:
                        raise RenderError(tr(f"办公室模板 {name} 无法渲染：{exc}", f"office template {name} cannot be rendered: {exc}")) from exc
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
