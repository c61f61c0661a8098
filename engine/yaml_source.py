"""YAML read with positions kept, so every problem can name its file:line:column.

PyYAML's ordinary ``safe_load`` throws the marks away and silently keeps the last of two
duplicate keys; a clerk editing a workflow file needs both reported where they are. We compose
the node tree and build the plain data ourselves, remembering for each JSON path the node of
its key and of its value.

Files come from offices, so before anything is composed ``check_yaml`` bounds what a file may
cost (a 377-byte file of nested aliases used 2.9 GB and 45 s, then MemoryError; a 63 MB workflow
2 minutes): at most ``MAX_YAML_CHARS`` characters and ``MAX_DEPTH`` levels of nesting, and an alias
may repeat only an anchored value that holds no alias itself (the ``title: &advance {…}`` …
``title: *advance`` reuse the shipped workflows make), with at most ``MAX_NODES`` values once every
alias is expanded. Each refusal is one located problem, in well under a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from engine.errors import Problem
from engine.i18n import tr

Path = tuple[str | int, ...]

MAX_YAML_CHARS = 2 * 1024 * 1024  # a province's plan listing 50,000 school codes inline is ~0.8 MB
MAX_DEPTH = 32  # workflow files nest 6 levels deep
MAX_NODES = 200_000  # values after expanding aliases
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Mark:
    """A 1-based place in the text."""

    line: int
    column: int


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def path_text(path: Iterable[str | int]) -> str:
    """``('stages', 2, 'gates', 0, 'op')`` → ``stages[2].gates[0].op`` (the field shown to users)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass
class SourceDoc:
    """Plain data (JSON-compatible) plus where each part of it came from."""

    source: str
    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def at(self, path: Iterable[str | int], *, key: bool = False) -> Mark:
        """The position of the value (or its key) at ``path``; falls back to the nearest parent."""
        p = tuple(path)
        while True:
            if key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if not p:
                return Mark(1, 1)
            p = p[:-1]

    def problem(self, path: Iterable[str | int], message: str, *, key: bool = False) -> Problem:
        p = tuple(path)
        mark = self.at(p, key=key)
        return Problem(self.source, message, mark.line, mark.column, path_text(p) or None)


def _scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A scalar as YAML types it, but dates as ISO text (JSON has no dates); a bad date stays text."""
    try:
        value = loader.construct_object(node)
    except (ValueError, yaml.constructor.ConstructorError):
        # e.g. 2022-02-30 looks like a date to YAML but is not one: keep the text for a clear message
        return node.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path, doc: SourceDoc) -> Any:
    doc.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                key = str(key)
            child = (*path, key)
            if key in out:
                mark = _mark(key_node)
                first = doc.keys[child]
                doc.problems.append(
                    Problem(
                        doc.source,
                        tr(
                            f"键 {key} 重复（第一次出现在第 {first.line} 行）",
                            f"duplicate key {key} (first at line {first.line})",
                        ),
                        mark.line,
                        mark.column,
                        path_text(child),
                    )
                )
                continue
            doc.keys[child] = _mark(key_node)
            out[key] = _build(loader, value_node, child, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    value = _scalar(loader, node)
    if isinstance(value, str) and _CONTROL.search(value):  # written as an escape, e.g. "\0" or "\e"
        mark = _mark(node)
        doc.problems.append(Problem(doc.source, tr("值中含有控制字符（如 \\0、\\e）", "the value holds a control character (such as \\0 or \\e)"),
                                    mark.line, mark.column, path_text(path) or None))
    return value


def _located(source: str, exc: yaml.YAMLError, text: str = "") -> Problem:
    """A YAML error as one problem at its place (a ReaderError is a NUL or control character)."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, str) else chr(exc.character or 0)
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return Problem(source, tr(f"文件含有 YAML 不允许的字符 U+{ord(char):04X}（控制字符）",
                                  f"the file has a character YAML does not allow: U+{ord(char):04X} (a control character)"),
                       line, column)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        at_line = mark.line + 1 if mark is not None else None
        at_column = mark.column + 1 if mark is not None else None
        what = exc.problem or exc.context or "?"
        return Problem(source, tr(f"YAML 语法错误：{what}", f"YAML syntax error: {what}"), at_line, at_column)
    return Problem(source, tr(f"YAML 错误：{exc}", f"YAML error: {exc}"), 1, 1)


# libyaml's loader, where PyYAML was built with it, reads a workflow file about ten times faster than
# the pure-Python one (a plan and its workflow: 0.8 s of a 1.2 s load); it gives the same nodes and
# marks. Errors are re-read with the pure-Python loader, whose messages and offsets (characters,
# not bytes) the problems quote.
FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_yaml(text: str, source: str) -> list[Problem]:
    """What a YAML text would cost to build, checked on its event stream (no tree is built):
    size, nesting depth, and aliases (see the module docstring). Empty when it is within bounds;
    syntax errors are left to the composer, which reports them with their place."""
    if len(text) > MAX_YAML_CHARS:
        return [Problem(source, tr(f"文件太大：{len(text):,} 个字符，上限 {MAX_YAML_CHARS:,}（学校名单请用 schools: {{file: …}}）",
                                   f"the file is too large: {len(text):,} characters, at most {MAX_YAML_CHARS:,} (list schools with schools: {{file: …}})"), 1, 1)]
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, events so far) of each open collection
    sizes: dict[str, int] = {}
    nested: set[str] = set()  # anchors whose value holds an alias
    total = 0
    try:
        for event in _events(text):
            mark: Any = event.start_mark
            if isinstance(event, yaml.AliasEvent):
                anchor = str(event.anchor)
                if anchor in nested:
                    return [Problem(source, tr(f"别名 *{anchor} 引用的内容本身含有别名：不允许嵌套展开（防止“YAML 炸弹”）",
                                               f"alias *{anchor} repeats a value that itself holds aliases: nested expansion is refused (a YAML bomb)"),
                                    mark.line + 1, mark.column + 1)]
                for open_anchor, _ in open_nodes:
                    if open_anchor is not None:
                        nested.add(open_anchor)
                total += sizes.get(anchor, 1)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(open_nodes) >= MAX_DEPTH:
                    return [Problem(source, tr(f"嵌套超过 {MAX_DEPTH} 层", f"nested more than {MAX_DEPTH} levels deep"),
                                    mark.line + 1, mark.column + 1)]
                open_nodes.append((event.anchor, total))
                total += 1
            elif isinstance(event, yaml.CollectionEndEvent) and open_nodes:
                opened, at = open_nodes.pop()
                if opened is not None:
                    sizes[opened] = total - at
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            if total > MAX_NODES:
                return [Problem(source, tr(f"展开别名后超过 {MAX_NODES:,} 个值", f"more than {MAX_NODES:,} values once aliases are expanded"),
                                mark.line + 1, mark.column + 1)]
    except yaml.reader.ReaderError as exc:
        return [_located(source, exc, text)]
    except yaml.YAMLError:
        return []
    return []


def _events(text: str) -> Iterable[yaml.Event]:
    try:
        return list(yaml.parse(text, Loader=FAST_LOADER))
    except yaml.YAMLError:
        return yaml.parse(text, Loader=yaml.SafeLoader)


def _single_node(text: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """The document's node and the loader that built it (``_build`` constructs scalars with it)."""
    fast = FAST_LOADER(text)
    try:
        return fast, fast.get_single_node()
    except yaml.YAMLError:
        fast.dispose()
    loader = yaml.SafeLoader(text)
    return loader, loader.get_single_node()


def read_yaml(text: str, source: str) -> SourceDoc:
    """Parse ``text``; syntax errors and duplicate keys land in ``doc.problems`` (data may be None)."""
    doc = SourceDoc(source=source, data=None)
    doc.problems = check_yaml(text, source)
    if doc.problems:
        return doc
    loader: yaml.SafeLoader | None = None
    try:
        loader, node = _single_node(text)
        if node is not None:
            doc.data = _build(loader, node, (), doc)
    except yaml.YAMLError as exc:
        doc.problems.append(_located(source, exc, text))
        doc.data = None
    finally:
        if loader is not None:
            loader.dispose()
    return doc
