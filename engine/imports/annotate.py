"""The problems of a refused file as a workbook the clerk can fix it from: each bad row of their own
file, as they wrote it, with its problems beside it (the upload preview's download).

Only the header and the rows with problems are written, not the whole file: a province's
million-row export with twelve bad rows gives a thirteen-row workbook. Written through
``engine.export`` like every other file people open (formula-like text neutralised).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ImportFileError
from engine.export import SheetColumn, xlsx_bytes
from engine.i18n import tr
from engine.imports.tabular import raw_rows

MAX_CELLS = 60  # columns of the clerk's row copied beside the problems


def problems_workbook(path: str | Path, problems: Sequence[Mapping[str, Any]], *, header_row: int | None,
                      title: str) -> bytes:
    """``problems`` as stored by engine.uploads (row, column, field, message)."""
    by_row: dict[int, list[str]] = {}
    general: list[str] = []
    for p in problems:
        text = f"[{p['field']}] {p['message']}" if p.get("field") else str(p["message"])
        if p.get("row") is None:
            general.append(text)
        else:
            by_row.setdefault(int(p["row"]), []).append(text)
    header: list[str] = []
    rows: list[list[Any]] = []
    try:
        for number, cells in enumerate(raw_rows(path), start=1):
            if number == header_row:
                header = cells[:MAX_CELLS]
            if number in by_row:
                rows.append([number, "；".join(by_row.pop(number)), *cells[:MAX_CELLS]])
            if not by_row and header_row is not None and number >= header_row:
                break
    except ImportFileError:
        rows.append(["", tr("（文件从此处起无法读取，以下各行不含原内容）", "(the file cannot be read from here: the rows below lack their cells)")])
    rows += [[number, "；".join(texts)] for number, texts in sorted(by_row.items())]
    rows += [["", text] for text in general]
    columns = [SheetColumn(tr("行号", "Row"), 8), SheetColumn(tr("问题", "Problem"), 60),
               *(SheetColumn(h or f"#{i + 1}", 14) for i, h in enumerate(header))]
    return xlsx_bytes(tr("问题", "Problems"), columns, rows, title=[title])
