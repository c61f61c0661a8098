"""A large CSV file's rows checked in forked processes, part by part (issue 11 speed: a
province's changed re-import at ≥ 80k rows/s on two cores).

Reading, parsing and checking a row is Python work: 5.6 of the 14.5 s a changed million-row
re-import took on one core. A CSV without a quote character holds one row per line, so its data
lines cut at line ends into parts that can be read apart: each part is decoded, parsed and
checked in a worker (``engine.forks``) by the import's own check, while this process stages the
parts already done, in the file's order — the rows, their order and the staged values are those
of the one-process read.

Only a good file's rows are read this way. A part with any problem, a key in two parts (a
platform id listed twice) or a file that does not qualify (a workbook, UTF-16, quotes, too small
to be worth a fork, a process with threads) returns None, and the caller clears what was staged
and reads the file itself: the problems a clerk is shown, with their rows and columns, are always
the one-process read's.
"""

from __future__ import annotations

import csv
import gc
import io
import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from engine.errors import ImportFileError
from engine.forks import fork_safe, forked, inherited
from engine.imports.tabular import Table, csv_delimiter

MIN_BYTES = 8 << 20  # ~150,000 rows of a progress export: below this a fork costs more than it saves
PARTS_PER_WORKER = 8  # small parts: the first is staged here while the workers read the next
MAX_WORKERS = 4
# Where a line end is one byte that no other character contains: not UTF-16.
SPLITTABLE = ("utf-8", "utf-8-sig", "gb18030")

Record = tuple[int, tuple[str, ...]]
Check = Callable[[Iterable[Record], Callable[[tuple[Any, ...]], None]], bool]


def worth_splitting(table: Table) -> int:
    """How many workers to check ``table`` with: 0 when it does not qualify (a workbook, UTF-16, a
    small file, a process with threads, one core) and the caller reads it itself at once."""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers < 2 or not fork_safe() or table.encoding not in SPLITTABLE:
        return 0
    return workers if table.path.stat().st_size >= MIN_BYTES else 0


def checked_in_parts(table: Table, fields: Sequence[str], check: Check, add: Callable[[list[tuple[Any, ...]]], None],
                     key: Callable[[tuple[Any, ...]], Hashable], progress: Callable[[int], None] | None,
                     workers: int) -> int | None:
    """``add`` every row of ``table``'s data (a part's rows at a time), checked by ``check(records, add) -> no problem``
    in ``workers`` processes (``worth_splitting``); the row count, or None when the caller must
    read the file itself (rows may have been added: clear them first). ``key`` of each row must
    be unique in the file; ``progress(rows)`` is told after each part."""
    data = table.path.read_bytes()
    parts = _parts(data, table.header_row, workers * PARTS_PER_WORKER)
    if parts is None:
        return None
    first_line = data[:data.find(b"\n") + 1].decode(str(table.encoding))  # as ``_csv_rows`` reads it
    job = (table, fields, check, data, parts, csv_delimiter(first_line))
    seen: set[Hashable] = set()
    total = 0
    with forked(min(workers, len(parts)), job) as pool:
        for ok, rows in pool.imap(_read_part, range(len(parts)), chunksize=1):
            if not ok:
                return None
            before = len(seen)
            seen.update(map(key, rows))
            if len(seen) - before != len(rows):
                return None  # a key listed twice: the one-process read names both rows
            add(rows)
            total += len(rows)
            if progress:
                progress(total)
    return total


def _parts(data: bytes, header_row: int, count: int) -> list[tuple[int, int, int]] | None:
    """(start, end, first row number) of ``count`` parts of the data lines, cut after line ends;
    None when a quote could hold a line end inside a cell, or there is no data line."""
    start = 0
    for _ in range(header_row):
        start = data.find(b"\n", start) + 1
        if start == 0:
            return None
    if start >= len(data) or b'"' in data:
        return None
    size = max(1, (len(data) - start) // count)
    cuts = [start]
    while cuts[-1] < len(data):
        end = data.find(b"\n", cuts[-1] + size)
        cuts.append(len(data) if end < 0 else end + 1)
    out, number = [], header_row + 1
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        out.append((a, b, number))
        number += data.count(b"\n", a, b)
    return out


def _read_part(index: int) -> tuple[bool, list[tuple[Any, ...]]]:
    """In a forked worker: part ``index`` decoded, parsed and checked; (no problem, its rows)."""
    table, fields, check, data, parts, delimiter = inherited()
    start, end, first = parts[index]
    text = data[start:end].decode(table.encoding)
    if "\x00" in text:  # the one-process read refuses it, with its line
        return False, []
    rows: list[tuple[Any, ...]] = []
    gc.disable()  # a part's rows only grow until returned: collections would walk them again and again
    try:
        ok = check(table.records_of(csv.reader(io.StringIO(text), delimiter=delimiter), first, fields), rows.append)
    except (ImportFileError, csv.Error):  # a cell under no header, a malformed line: read here, it is named
        return False, []
    finally:
        gc.enable()
    return ok, rows if ok else []
