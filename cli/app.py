"""What every command shares: the database, the clock, the language, and how output is printed.

Commands stay thin: they parse options, call the engine, and print what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine import Clock, make_engine, require_schema, sessions, transaction


@dataclass
class App:
    db_url: str
    clock: Clock
    lang: str = "zh"
    _engine: Engine | None = field(default=None, repr=False)
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        """The database engine, checked to have the current schema (else: run 'rollout init')."""
        if self._engine is None:
            self._engine = make_engine(self.db_url)
            require_schema(self._engine)
        return self._engine

    def raw_engine(self) -> Engine:
        """The engine without the schema check (for ``init``)."""
        if self._engine is None:
            self._engine = make_engine(self.db_url)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = sessions(self.engine)
        return self._sessions

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session


pass_app = click.make_pass_decorator(App)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dump_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=_default)


def emit(data: Any, as_json: bool, render: Callable[[], str]) -> None:
    """Print ``data`` as JSON, or the human rendering."""
    click.echo(dump_json(data) if as_json else render())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table that lines up CJK text (wide characters count double)."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True)).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)
