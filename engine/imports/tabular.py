"""Read the spreadsheets offices really exchange: CSV in any of their encodings, and XLSX.

Offices send exports with Chinese headers, as GBK/GB18030 CSV from older tools, UTF-8 (with or
without the BOM Excel writes), or XLSX (DOMAIN.md "Data that really exists out there"). Files are
read as a stream of ``(row_number, {field: text})`` so a province's million teachers never sit in
memory at once; ``row_number`` is the row the clerk sees in Excel (header = row 1).

Headers are matched to rollout's fields through a column mapping (``engine.imports.mapping``). A file
with a national ID column is refused whole: teacher records keep only what the programme needs.
"""

from __future__ import annotations

import codecs
import csv
import operator
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TextIO, cast

from engine.errors import ImportFileError, Problem
from engine.i18n import tr
from engine.imports.mapping import normalise_header
from engine.imports.workbook import check_workbook

# Title rows ("XX县教师学时统计表") often sit above the real header; look this far for it.
HEADER_SEARCH_ROWS = 10
_CHUNK = 1 << 20

# Header words that mean a national ID number (居民身份证号码, 证件号码 …): refused on sight.
_ID_HEADER = re.compile(r"身份证|证件号|证件编号|证件号码|idcard|idnumber|nationalid|idno")


# --------------------------------------------------------------------------- encodings


def detect_encoding(path: Path) -> str:
    """BOM first; else the whole file must be strict UTF-8, else strict GB18030 (a superset of
    GBK). A file that is neither is refused rather than read with replacement characters."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        # A UTF-8 BOM is a claim, not a proof: 796 of 2,230 fuzzed files had one before GBK bytes.
        candidates = ("utf-8-sig",) if head.startswith(codecs.BOM_UTF8) else ("utf-8", "gb18030")
        for encoding in candidates:
            handle.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)("strict")
            offset = 0
            try:
                while chunk := handle.read(_CHUNK):
                    decoder.decode(chunk)
                    offset += len(chunk)
                decoder.decode(b"", final=True)
                return encoding
            except UnicodeDecodeError as exc:
                bad_at = offset + exc.start
    raise ImportFileError(
        str(path),
        [Problem(str(path), tr(
            f"文件编码无法识别（第 {bad_at} 字节起既不是 UTF-8 也不是 GBK/GB18030）：请另存为 UTF-8 或 GBK 编码的 CSV，或 XLSX",
            f"unknown text encoding (neither UTF-8 nor GBK/GB18030 from byte {bad_at}): save the file as UTF-8 or GBK CSV, or as XLSX",
        ))],
    )


# --------------------------------------------------------------------------- cells


def cell_text(value: Any) -> str:
    """XLSX cells as the text the clerk typed: 3703230001 (an int or a float) must not become
    '3703230001.0', dates become ISO dates, empty cells become ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def csv_delimiter(first_line: str) -> str:
    """The delimiter of a CSV whose first line this is. Excel's "Unicode text" export uses tabs,
    some European-locale tools use ';'."""
    return max(",\t;", key=first_line.count) if first_line else ","


def _csv_rows(handle: IO[str], source: str) -> Iterator[list[str]]:
    """Rows of a CSV; what the csv module or the decoder cannot take is one located problem."""
    reader = None
    try:
        delimiter = csv_delimiter(handle.readline())
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        for row in reader:
            if "\x00" in "".join(row):  # no database stores it (PostgreSQL: DataError)
                raise _bad_line(source, reader.line_num, tr("含有 NUL 字符（\\0）：文件可能已损坏或不是文本文件",
                                                         "holds a NUL character (\\0): the file is damaged or not text"))
            yield row
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 1
        raise _bad_line(source, line, tr(f"无法按 CSV 读取（{exc}）：单元格最长 {csv.field_size_limit():,} 个字符，引号须成对",
                                         f"cannot be read as CSV ({exc}): a cell holds at most {csv.field_size_limit():,} characters, quotes come in pairs")) from exc
    except UnicodeDecodeError as exc:
        line = (reader.line_num + 1) if reader is not None else 1
        raise _bad_line(source, line, tr(f"编码错误（{exc.reason}）：请整份文件另存为 UTF-8 或 GBK 编码",
                                         f"bad text encoding ({exc.reason}): save the whole file as UTF-8 or GBK")) from exc


def _bad_line(source: str, line: int, message: str) -> ImportFileError:
    return ImportFileError(source, [Problem(source, tr(f"第 {line} 行{message}", f"line {line} {message}"), line=line)])


def _xlsx_rows(path: Path, source: str) -> Iterator[list[str]]:
    """The first sheet's rows, values as the workbook cached them (formulas' last results).

    Read with calamine (Rust): about three times faster than openpyxl's read-only mode, which
    limited XLSX imports to ~10k rows/s. calamine holds the sheet's cells in memory while rows
    are handed out (≈ 0.5 KB per row of a progress export); an XLSX sheet stops at 1,048,576 rows,
    and a province's million teachers come as CSV, which streams.
    """
    from python_calamine import CalamineError, CalamineWorkbook

    check_workbook(path, source)  # a zip bomb or a cell in XFD1048576 would abort the process inside calamine
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except CalamineError as exc:
        raise _unreadable_xlsx(path, exc) from exc
    try:
        try:
            sheet = workbook.get_sheet_by_index(0)
        except CalamineError as exc:
            raise _unreadable_xlsx(path, exc) from exc
        start = sheet.start
        if start is None:
            return
        # iter_rows() begins at the sheet's row 1 but at the first used column: put back the
        # empty columns before it, so column numbers in problems are the sheet's.
        pad = [""] * start[1]
        for row in sheet.iter_rows():
            yield [*pad, *map(cell_text, row)]
    finally:
        workbook.close()


def _unreadable_xlsx(path: Path, exc: Exception) -> ImportFileError:
    return ImportFileError(str(path), [Problem(str(path), tr(
        f"无法读取该 XLSX 文件（{exc}）：请在 Excel/WPS 中打开后重新另存为 .xlsx 或 CSV",
        f"cannot read this XLSX file ({exc}): open it in Excel/WPS and save it again as .xlsx or CSV",
    ))])


def _raw_rows(path: Path, source: str) -> tuple[Iterator[list[str]], IO[str] | None]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, source), None
    if suffix == ".xls":
        raise ImportFileError(str(path), [Problem(str(path), tr(
            "不支持旧版 .xls 文件：请在 Excel/WPS 中另存为 .xlsx 或 CSV",
            "old .xls files are not supported: save as .xlsx or CSV in Excel/WPS",
        ))])
    handle = path.open(encoding=detect_encoding(path), newline="")
    return _csv_rows(handle, source), handle


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    """Where a field is in the file: its header as the clerk wrote it, and its 1-based index."""

    field: str
    header: str
    index: int


def _match_header(
    cells: list[str], fields: Mapping[str, tuple[str, ...]]
) -> dict[str, Column]:
    wanted: dict[str, tuple[str, int]] = {}
    for name, headers in fields.items():
        for rank, header in enumerate(headers):
            wanted.setdefault(normalise_header(header), (name, rank))
    found: dict[str, tuple[int, Column]] = {}
    for index, cell in enumerate(cells):
        hit = wanted.get(normalise_header(cell))
        if hit is None:
            continue
        name, rank = hit
        if name not in found or rank < found[name][0]:
            found[name] = (rank, Column(name, cell, index + 1))
    return {name: column for name, (_, column) in found.items()}


class Table:
    """An open file: ``columns`` says where each field is; iterating yields the data rows.

    Use as a context manager so a CSV handle is closed even when validation stops early.
    """

    def __init__(
        self,
        path: str | Path,
        fields: Mapping[str, tuple[str, ...]],
        required: Iterable[str],
        source: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.source = source or str(path)
        if not self.path.is_file():
            raise ImportFileError(self.source, [Problem(self.source, tr("文件不存在", "file not found"))])
        self._rows, self._handle = _raw_rows(self.path, self.source)
        try:
            self.header_row, self.columns = self._find_header(fields, list(required))
        except BaseException:
            self.close()
            raise

    def _find_header(
        self, fields: Mapping[str, tuple[str, ...]], required: list[str]
    ) -> tuple[int, dict[str, Column]]:
        best: tuple[int, list[str], dict[str, Column]] | None = None
        for number, cells in enumerate(self._rows, start=1):
            self._refuse_id_columns(number, cells)
            columns = _match_header(cells, fields)
            if all(name in columns for name in required):
                # Cells right of the last header are nobody's: a row that fills one is refused.
                self.width = max((i + 1 for i, c in enumerate(cells) if c.strip()), default=0)
                return number, columns
            if best is None or len(columns) > len(best[2]):
                best = (number, cells, columns)
            if number >= HEADER_SEARCH_ROWS:
                break
        if best is None:
            raise ImportFileError(self.source, [Problem(self.source, tr("文件是空的", "the file is empty"))])
        number, _, columns = best
        missing = [name for name in required if name not in columns]
        listing = "；".join(f"{name}（{'/'.join(fields.get(name, ()))}）" for name in missing)
        raise ImportFileError(self.source, [Problem(
            self.source,
            tr(f"缺少必需的列：{listing}", f"required columns missing: {listing}"),
            line=number,
            field=", ".join(missing),
        )])

    def _refuse_id_columns(self, number: int, cells: list[str]) -> None:
        for index, cell in enumerate(cells, start=1):
            if cell and _ID_HEADER.search(normalise_header(cell)):
                raise ImportFileError(self.source, [Problem(
                    self.source,
                    tr(
                        f"文件含有身份证号/证件号列“{cell}”：本系统不收集、不保存身份证号（个人信息最小化）。请删除该列后重新导入",
                        f"the file has a national ID column '{cell}': rollout never collects or stores ID numbers (personal data minimisation). Delete that column and import again",
                    ),
                    line=number,
                    column=index,
                    field=cell,
                )])

    def _unlabelled(self, number: int, cells: list[str]) -> ImportFileError:
        column = next(i for i in range(self.width, len(cells)) if cells[i].strip()) + 1
        return ImportFileError(self.source, [Problem(self.source, tr(
            f"第 {number} 行第 {column} 列有内容“{cells[column - 1].strip()[:40]}”，但这一列没有表头：请补上表头（如“测评结果”）或删除该单元格",
            f"row {number} has a value in column {column} ('{cells[column - 1].strip()[:40]}') under no header: "
            "add the header (e.g. 测评结果) or delete the cell"), line=number, column=column)])

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        picks = [(c.field, c.index - 1) for c in self.columns.values()]
        for number, cells in enumerate(self._rows, start=self.header_row + 1):
            if not any(cells) or not "".join(cells).strip():
                continue
            if len(cells) > self.width and "".join(cells[self.width:]).strip():
                raise self._unlabelled(number, cells)
            width = len(cells)
            yield number, {name: (cells[i].strip() if i < width else "") for name, i in picks}

    def records(self, fields: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """Like iterating, but each row is a tuple of the ``fields``' stripped texts in that order
        ('' for a field the file has no column for): no dict per row, for million-row files."""
        return self.records_of(self._rows, self.header_row + 1, fields)

    def records_of(self, rows: Iterable[list[str]], first: int,
                   fields: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """``records`` of ``rows``, the file's data rows from row ``first`` on: the whole file's,
        or a part of it read elsewhere (``engine.imports.split``)."""
        width = self.width
        # A field without a column reads the cell just past the header's last one: every row is
        # padded with it and a row with anything there is refused, so it is always ''.
        indexes = [self.columns[f].index - 1 if f in self.columns else width for f in fields]
        need = max(indexes) + 1
        pick = operator.itemgetter(*indexes)
        single = len(indexes) == 1
        strip = str.strip
        for number, cells in enumerate(rows, start=first):
            first_cell = cells[0] if cells else ""
            if (not first_cell or first_cell.isspace()) and not "".join(cells).strip():
                continue  # a blank row
            if len(cells) > width and "".join(cells[width:]).strip():
                raise self._unlabelled(number, cells)
            if len(cells) < need:
                cells = cells + [""] * (need - len(cells))
            if single:
                yield number, (strip(cells[indexes[0]]),)
            else:
                yield number, tuple(map(strip, pick(cells)))

    @property
    def encoding(self) -> str | None:
        """The CSV's text encoding as found (``detect_encoding``); None for a workbook."""
        return cast(TextIO, self._handle).encoding if self._handle is not None else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_table(
    path: str | Path,
    fields: Mapping[str, tuple[str, ...]],
    required: Iterable[str],
    source: str | None = None,
) -> Table:
    """Open ``path`` and locate its header; raises ImportFileError for missing required columns,
    an ID-number column, an unknown encoding or an unsupported file type."""
    return Table(path, fields, required, source)


def estimate_rows(path: str | Path) -> int | None:
    """Roughly how many data rows a file has, for a progress bar (cheap: no parsing)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            try:
                rows = check_workbook(path)
            except ImportFileError:
                return None  # not a workbook we will read: the import itself says why
            return max(0, rows - 1) if rows else None
        lines = 0
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                lines += chunk.count(b"\n")
        return max(0, lines - 1)
    except OSError:
        return None


def file_encoding(path: str | Path) -> str:
    """How a file is read, for the upload preview: 'xlsx', or the CSV text encoding found."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return "xlsx"
    return detect_encoding(path)


def raw_rows(path: str | Path, source: str | None = None) -> Iterator[list[str]]:
    """Every row of the file as its cells' texts, header and title rows included (for the
    problems workbook, which shows the clerk's own rows beside their problems)."""
    rows, handle = _raw_rows(Path(path), source or str(path))
    try:
        yield from rows
    finally:
        if handle is not None:
            handle.close()
