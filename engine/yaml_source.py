"""YAML read with positions kept, so every problem can name its file:line:column.

PyYAML's ordinary ``safe_load`` throws the marks away and silently keeps the last of two
duplicate keys; a clerk editing a workflow file needs both reported where they are. We compose
the node tree and build the plain data ourselves, remembering for each JSON path the node of
its key and of its value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from engine.errors import Problem
from engine.i18n import tr

Path = tuple[str | int, ...]


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
    return _scalar(loader, node)


def read_yaml(text: str, source: str) -> SourceDoc:
    """Parse ``text``; syntax errors and duplicate keys land in ``doc.problems`` (data may be None)."""
    doc = SourceDoc(source=source, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _build(loader, node, (), doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        what = exc.problem or exc.context or "?"
        doc.problems.append(
            Problem(source, tr(f"YAML 语法错误：{what}", f"YAML syntax error: {what}"), line, column)
        )
        doc.data = None
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(source, tr(f"YAML 错误：{exc}", f"YAML error: {exc}"), 1, 1))
        doc.data = None
    finally:
        loader.dispose()
    return doc
