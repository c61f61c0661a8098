"""The window's history read into teachers × observations arrays: each teacher's base (its
figures as of the window's first import) and its figures at each import after it (issue 11 speed).

Two shapes of the same read, each the faster on its database (docs/benchmarks.md):

- **By teacher (SQLite).** Each present teacher is one row: its figures now, ``LEFT JOIN``ed to
  its row of each import — one probe of the (import, teacher) key per import. The rows as they
  lie, a row per (teacher, import) with its prior figures, were 2,000,000 rows of ten values for
  half a province: 3.4 s of a forecast worker's 4.4 s, nearly all of it the driver making Python
  objects (SQLite's own scan is 0.1 s). By teacher the driver makes a quarter of the rows and
  none of the unused priors: the forked workers' read CPU 7.4–8.2 → 5.9–6.3 s, the province
  forecast 9.9–11.8 → 9.3–9.7 s in turns.
- **As the rows lie (PostgreSQL).** psycopg turns binary rows into tuples in C (2,000,000 in
  2.8 s with the server's scan), while the server joins four imports to half a province's
  teachers in 3.8–6.5 s: there the window's rows are read as they are, and the teachers' figures
  now apart.

The base is ``engine.forecast.base``'s rule: the prior figures of the teacher's first row after
the window's first import, or its figures now when it has none. By teacher it is said in SQL; a
statement joins at most ``JOINED`` imports (SQLite joins at most 64 tables), so a replay from far
back, with more imports after its window, reads them in several statements, each naming the
position of the teacher's first row in it, and ``base.take_priors`` keeps the earliest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from engine.forecast.base import take_priors, unseen
from engine.forecast.cursor import arrays, present_rows, statement

JOINED = 24  # imports joined in one statement
Scope = Sequence[str] | range | None  # a list of school codes, a range of teacher ids, or every teacher
# A scope's condition on the teachers ``t`` (by teacher); on the history's rows as they lie; on the
# teachers' figures now.
BY_TEACHER_IN = {"every": "", "schools": "AND t.school_code IN :codes", "range": "AND t.id >= :first_id AND t.id < :end_id"}
ROWS_IN = {"every": "", "schools": "AND teacher_id IN (SELECT id FROM teacher WHERE school_code IN :codes)",
           "range": "AND teacher_id >= :first_id AND teacher_id < :end_id"}
CURRENT_IN = {"every": "", "schools": "AND school_code IN :codes", "range": "AND id >= :first_id AND id < :end_id"}


def groups(imports: Sequence[int]) -> list[tuple[int, list[int]]]:
    """The imports (ascending) in statements of at most ``JOINED``: (position of the first, ids);
    one statement of none when there are none (it reads the figures now: every teacher's base)."""
    if not imports:
        return [(0, [])]
    return [(at, list(imports[at:at + JOINED])) for at in range(0, len(imports), JOINED)]


def window_sql(offset: int, imports: Sequence[int], total: int, fields: Sequence[str], where: str) -> str:
    """One row per present teacher (``where``: more conditions on ``teacher t``): its id; the
    position among all ``total`` imports after the base of its first row of these ``imports``
    (their positions start at ``offset``); its base figures by that row; and its figures at each
    of ``imports`` (NULL: no row, no change). In the last statement a teacher with no row in it
    has position ``total`` and its figures now as its base; in the others NULL and NULL.

    Import ids are rendered as literals (integers read from the database): each join's import is a
    constant of its key's seek, not a parameter."""
    last = offset + len(imports) == total
    joined = [f"p{j}" for j in range(len(imports))]

    def first(values: Sequence[str], otherwise: str) -> str:
        arms = " ".join(f"WHEN {p}.teacher_id IS NOT NULL THEN {v}" for p, v in zip(joined, values, strict=True))
        return f"CASE {arms} ELSE {otherwise} END" if arms else otherwise

    position = first([str(offset + j) for j in range(len(imports))], str(total) if last else "NULL")
    bases = [first([f"{p}.prior_{f}" for p in joined], f"t.{f}" if last else "NULL") for f in fields]
    figures = [f"{p}.{f}" for p in joined for f in fields]
    joins = "".join(f" LEFT JOIN teacher_progress {p} ON {p}.import_id = {int(i)} AND {p}.teacher_id = t.id"
                    for p, i in zip(joined, imports, strict=True))
    return f"SELECT t.id, {', '.join([position, *bases, *figures])} FROM teacher t{joins} WHERE t.left_on IS NULL {where}"


def read_window(session: Session, values: Mapping[str, np.ndarray], row_of: np.ndarray, imports: Sequence[int],
                columns: np.ndarray, scopes: Sequence[Scope]) -> np.ndarray:
    """Fill ``values`` (field → teachers × observations, NaN, in place; column 0 the base) from the
    ``imports`` after the window's first (ascending; ``columns`` the observation of each, the
    observation count for those after the last, which give only bases) for the teachers of each
    scope that ``row_of`` lists (teacher id → row, -1: not one). Which rows were read: the present
    teachers found."""
    fields = list(values)
    n, k = next(iter(values.values())).shape
    seen = np.zeros(n, dtype=bool)
    bases = [values[f][:, 0] for f in fields]  # views: the base column
    earliest = unseen(n)
    if session.get_bind().dialect.name == "postgresql":
        _as_rows(session, values, k, bases, earliest, seen, row_of, imports, columns, scopes)
        return seen
    width = len(fields)
    for offset, group in groups(imports):
        inside = [(j, c) for j, c in enumerate(columns[offset:offset + len(group)].tolist()) if c < k]
        for scope in scopes:
            bound, where = _scope(scope, BY_TEACHER_IN)
            sql = window_sql(offset, group, len(imports), fields, where)
            for table in arrays(session, statement(sql), bound):
                rows, table = present_rows(row_of, table)
                seen[rows] = True
                found = ~np.isnan(table[:, 1])  # a row in these imports (or, in the last, the figures now)
                take_priors(earliest, bases, rows[found], table[found, 1].astype(np.int64), table[found, 2:2 + width])
                for j, column in inside:  # one row per teacher: plain assignment (fmax: imports sharing a day)
                    for c, f in enumerate(fields):
                        block = values[f]
                        block[rows, column] = np.fmax(block[rows, column], table[:, 2 + width * (1 + j) + c])
    return seen


def _as_rows(session: Session, values: Mapping[str, np.ndarray], k: int, bases: list[np.ndarray],
             earliest: np.ndarray, seen: np.ndarray, row_of: np.ndarray, imports: Sequence[int],
             columns: np.ndarray, scopes: Sequence[Scope]) -> None:
    """``read_window`` from the history's rows as they lie and the teachers' figures now."""
    fields = list(values)
    for scope in scopes:
        bound, where = _scope(scope, CURRENT_IN)
        for table in arrays(session, statement(f"SELECT id, {', '.join(fields)} FROM teacher "
                                               f"WHERE left_on IS NULL {where}"), bound):
            rows, table = present_rows(row_of, table)
            seen[rows] = True
            for c, base in enumerate(bases):
                base[rows] = table[:, 1 + c]
    if not imports:
        return
    column_of = np.full(max(imports) + 1, k, dtype=np.int64)
    column_of[list(imports)] = columns
    sql = (f"SELECT teacher_id, import_id, {', '.join(fields)}, {', '.join('prior_' + f for f in fields)} "
           f"FROM teacher_progress WHERE import_id IN ({', '.join(str(int(i)) for i in imports)}) ")
    width = len(fields)
    for scope in scopes:
        bound, where = _scope(scope, ROWS_IN)
        for table in arrays(session, statement(sql + where), bound):
            rows, table = present_rows(row_of, table)
            at = table[:, 1].astype(np.int64)
            take_priors(earliest, bases, rows, at, table[:, 2 + width:])
            j = column_of[at]
            inside = j < k
            for c, f in enumerate(fields):  # fmax: a teacher's larger figure of imports sharing a day
                np.fmax.at(values[f], (rows[inside], j[inside]), table[inside, 2 + c])


def _scope(scope: Scope, where: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """(the binds, the condition ``where`` gives for every teacher, a list of schools or a range of ids)."""
    if scope is None:
        return {}, where["every"]
    if isinstance(scope, range):
        return {"first_id": scope.start, "end_id": scope.stop}, where["range"]
    return {"codes": list(scope)}, where["schools"]
