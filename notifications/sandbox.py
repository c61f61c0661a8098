"""An office's own templates, rendered in a separate process with bounded time and memory.

Override templates are written by people outside the project. Jinja2's sandbox stops attribute
tricks but not work: nested ``range(100000)`` loops ran forever, ``'x'|center(10**9)`` built 1 GB
and ``indent`` reached 2 GB, all inside the sweep's process. So a render of an override runs in a
child process (this file run as a script, ``python -I``: it imports nothing of the project):

* its address space is capped (``RLIMIT_AS``, ``MEMORY_BYTES``): a template that builds too much
  gets MemoryError in the child, never in the sweep;
* each render has a wall-clock deadline (``TIMEOUT_SECONDS``); past it the child is killed and the
  next render starts a fresh one;
* the output is capped as it is generated (``max_output``), and ``*``/``**`` are bounded as before.

Every failure comes back as a message that ``notifications.rendering`` raises as ``RenderError``.
One child serves every render of a process in turn (starting one costs ~0.1 s).
"""

from __future__ import annotations

import atexit
import json
import operator
import os
import pickle
import re
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_SEQUENCE = 100_000  # longest string/list an override may build with * (cf. the sandbox's MAX_RANGE)
MAX_POWER = 10**12
TIMEOUT_SECONDS = 5.0  # a province's digest renders in milliseconds
MEMORY_BYTES = 768 * 1024 * 1024  # the child's whole address space, interpreter included
_HEADER = struct.Struct("!I")


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


class OfficeSandbox(ImmutableSandboxedEnvironment):
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


def options(loader: Any, fmt: str) -> dict[str, Any]:
    return dict(loader=loader, undefined=StrictUndefined, autoescape=fmt == "html", trim_blocks=True,
                lstrip_blocks=True, keep_trailing_newline=True)


def configure(env: Environment, fmt: str) -> Environment:
    env.filters["md"] = md_escape
    env.filters["pct"] = pct
    if fmt == "md":
        env.finalize = _finalize_md
    return env


def render_capped(folder: str, name: str, fmt: str, context: dict[str, Any], limit: int) -> str:
    """Render one override (in the child); the output is capped as it grows."""
    loader = ChoiceLoader([FileSystemLoader(folder), FileSystemLoader(TEMPLATES)])
    template = configure(OfficeSandbox(**options(loader, fmt)), fmt).get_template(name)
    parts: list[str] = []
    size = 0
    for chunk in template.generate(**context):
        size += len(chunk)
        if size > limit:
            raise SecurityError(f"template {name} produced more than {limit} characters: stopped")
        parts.append(chunk)
    return "".join(parts)


# --------------------------------------------------------------------------- the child


def _serve() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    except (ImportError, ValueError, OSError) as exc:  # no rlimits here: the deadline still holds
        print(f"rollout template sandbox: no memory limit ({exc})", file=sys.stderr)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while header := stdin.read(_HEADER.size):
        request = pickle.loads(stdin.read(_HEADER.unpack(header)[0]))
        try:
            reply: dict[str, str] = {"ok": render_capped(*request)}
        except MemoryError:
            reply = {"error": "the template needed too much memory"}
        except RecursionError:
            reply = {"error": "the template nests too deeply"}
        except Exception as exc:  # noqa: BLE001 - every failure of an office's template is reported, none kills the child
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(reply, ensure_ascii=False).encode("utf-8")
        stdout.write(_HEADER.pack(len(data)) + data)
        stdout.flush()


# --------------------------------------------------------------------------- the parent


def plain(value: Any) -> Any:
    """The context as builtin types only: the child imports nothing of the project."""
    if value is None or type(value) in (bool, int, float, str, date, datetime, Decimal):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, bool | int | float):
        return value
    return str(value)


class SandboxFailed(Exception):
    """The child reported an error, ran past its deadline or died."""


class Renderer:
    """The one child process of this process, started on first use and after every kill."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self.lock = threading.Lock()
        self.child: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)  # no child outlives the process that started it

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)

    def _kill(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.kill()
            child.wait()
            for pipe in (child.stdin, child.stdout):
                if pipe is not None:
                    pipe.close()

    def _read(self, child: subprocess.Popen[bytes], n: int, deadline: float) -> bytes:
        assert child.stdout is not None
        fd = child.stdout.fileno()
        data = b""
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._kill()
                raise SandboxFailed(f"the template ran longer than {self.timeout:g} s: stopped")
            chunk = os.read(fd, n - len(data))
            if not chunk:
                self._kill()
                raise SandboxFailed("the template process died (out of memory?)")
            data += chunk
        return data

    def render(self, folder: Path, name: str, fmt: str, context: Mapping[str, Any], limit: int) -> str:
        request = pickle.dumps((str(folder), name, fmt, plain(dict(context)), limit))
        with self.lock:
            if self.child is None or self.child.poll() is not None:
                self.child = self._start()
            child = self.child
            assert child.stdin is not None
            try:
                child.stdin.write(_HEADER.pack(len(request)) + request)
            except (BrokenPipeError, OSError) as exc:
                self._kill()
                raise SandboxFailed(f"the template process is gone ({exc})") from exc
            deadline = time.monotonic() + self.timeout
            size = _HEADER.unpack(self._read(child, _HEADER.size, deadline))[0]
            reply = json.loads(self._read(child, size, deadline).decode("utf-8"))
        if "error" in reply:
            raise SandboxFailed(reply["error"])
        return str(reply["ok"])

    def close(self) -> None:
        with self.lock:
            self._kill()


if __name__ == "__main__":
    _serve()
