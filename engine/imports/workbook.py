"""An XLSX checked before anything reads it: zip bombs and absurd sheet dimensions are refused.

calamine (Rust) allocates a sheet as one dense block from its first to its last used cell: a 5 KB
file with one value in XFD1048576 asked for 549 GB and the process died (SIGABRT), which no
``except`` can catch. So before calamine opens a workbook, the zip is inspected with the standard
library: every member's declared sizes and compression ratio are capped, every member is read
through once (zipfile stops at the declared size and checks the CRC, so a header that lies is
caught too), and the first sheet's declared ``<dimension ref=…>`` and its real extent — the
largest row number and column letters its cells name — must fit ``MAX_CELLS``. Reading is
streamed; the check costs a fraction of the import (docs/security.md).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath

from engine.errors import ImportFileError, Problem
from engine.i18n import tr

MAX_UNCOMPRESSED = 1 << 30  # 1 GiB of XML in all: a 1,048,576-row progress export is ~150 MB
MAX_RATIO = 200  # uncompressed / compressed per member; sheet XML compresses 10–30×
MAX_MEMBERS = 10_000
MAX_COLUMNS = 16_384  # Excel's own limit (XFD)
MAX_CELLS = 32_000_000  # rows × columns calamine may allocate (~1 GB at 32 bytes a cell)
_CHUNK = 1 << 20
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\b[^>]*\bref="([^"]+)"')
_ROW = re.compile(rb'<(?:\w+:)?row\b[^>]*?\br="(\d+)"')
_WIDE_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]{2,})(\d+)"')  # columns AA and beyond
_SHEET_TARGET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\br:id="([^"]+)"')
_REL = re.compile(rb'<Relationship\b[^>]*?\bId="([^"]+)"[^>]*?\bTarget="([^"]+)"|<Relationship\b[^>]*?\bTarget="([^"]+)"[^>]*?\bId="([^"]+)"')


def _refuse(source: str, zh: str, en: str) -> ImportFileError:
    return ImportFileError(source, [Problem(source, tr(zh, en))])


def column_number(letters: str) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - 64
    return number


def _extent(ref: bytes) -> tuple[int, int]:
    """(rows, columns) of a range such as ``A1:XFD1048576`` counted from A1 (an upper bound)."""
    last = ref.split(b":")[-1]
    match = re.fullmatch(rb"\$?([A-Z]{1,7})\$?(\d{1,12})", last)
    if match is None:
        return 0, 0
    return int(match.group(2)), column_number(match.group(1).decode())


def _first_sheet(book: zipfile.ZipFile) -> str | None:
    """The member of the workbook's first sheet, as workbook.xml and its relationships name it."""
    names = set(book.namelist())
    try:
        workbook = book.read("xl/workbook.xml")[: 4 * _CHUNK]
        rels = book.read("xl/_rels/workbook.xml.rels")[: 4 * _CHUNK]
    except KeyError:
        return next((n for n in sorted(names) if n.startswith("xl/worksheets/") and n.endswith(".xml")), None)
    first = _SHEET_TARGET.search(workbook)
    if first is None:
        return None
    for m in _REL.finditer(rels):
        rid, target = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        if rid == first.group(1):
            path = target.decode()
            resolved = path.lstrip("/") if path.startswith("/") else str(PurePosixPath("xl") / path)
            return resolved if resolved in names else None
    return None


def _scan_sheet(book: zipfile.ZipFile, member: str) -> tuple[int, int, int, int]:
    """(declared rows, declared columns, real rows, real columns) of a sheet, streamed."""
    declared = (0, 0)
    rows = columns = 0
    tail = b""
    with book.open(member) as stream:
        while chunk := stream.read(_CHUNK):
            data = tail + chunk
            if declared == (0, 0) and (found := _DIMENSION.search(data)):
                declared = _extent(found.group(1))
            # A tag cut at the chunk's end is matched again with the next chunk: counts are maxima.
            rows = max([rows, *map(int, _ROW.findall(data))])
            for letters, row in _WIDE_CELL.findall(data):
                columns = max(columns, column_number(letters.decode()))
                rows = max(rows, int(row))
            tail = data[-256:]
    return declared[0], declared[1], rows, columns


def check_workbook(path: str | Path, source: str | None = None) -> int | None:
    """Raise ImportFileError for a zip bomb or an absurd sheet; else the first sheet's last row
    (None when it has no cells), which is also what a progress bar needs."""
    source = source or str(path)
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(source, f"不是有效的 XLSX 文件（{exc}）：请在 Excel/WPS 中打开后另存为 .xlsx 或 CSV",
                      f"not a valid XLSX file ({exc}): open it in Excel/WPS and save it again as .xlsx or CSV") from exc
    with book:
        infos = book.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _refuse(source, f"XLSX 文件内含 {len(infos)} 个部件，超过上限 {MAX_MEMBERS}", f"the XLSX holds {len(infos)} parts, more than {MAX_MEMBERS}")
        total = sum(i.file_size for i in infos)
        bomb = next((i for i in infos if i.file_size > _CHUNK and i.file_size > MAX_RATIO * max(i.compress_size, 1)), None)
        if total > MAX_UNCOMPRESSED or bomb is not None:
            raise _refuse(source, f"XLSX 文件解压后过大（{total:,} 字节）或压缩比异常（疑似“压缩炸弹”），拒绝读取",
                          f"the XLSX expands to too much ({total:,} bytes) or has an absurd compression ratio (a zip bomb): refused")
        sheet = _first_sheet(book)
        try:
            for info in infos:  # decompress everything once: sizes that lie fail zipfile's CRC check
                if info.filename != sheet:
                    with book.open(info) as stream:
                        while stream.read(_CHUNK):
                            pass
            if sheet is None:
                return None
            declared_rows, declared_cols, rows, columns = _scan_sheet(book, sheet)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise _refuse(source, f"XLSX 文件已损坏（{exc}）：请在 Excel/WPS 中打开后重新另存",
                          f"the XLSX file is damaged ({exc}): open it in Excel/WPS and save it again") from exc
    # Cells in columns A–Z are not scanned one by one (that would cost a regex match per cell):
    # they count as 26 columns, which still bounds a 1,048,576-row sheet under MAX_CELLS.
    real_cols = max(columns, 26) if rows else 0
    for kind, (n_rows, n_cols) in (("declared", (declared_rows, declared_cols)), ("real", (rows, real_cols))):
        if n_cols > MAX_COLUMNS or n_rows > 1_048_576 or n_rows * n_cols > MAX_CELLS:
            what_zh = "声明的" if kind == "declared" else "实际使用的"
            raise _refuse(source, f"工作表{what_zh}范围过大（{n_rows:,} 行 × {n_cols:,} 列，上限 {MAX_CELLS:,} 个单元格）：请删除远处的空白或多余单元格后另存，或另存为 CSV",
                          f"the sheet's {kind} range is absurd ({n_rows:,} rows × {n_cols:,} columns, at most {MAX_CELLS:,} cells): "
                          "delete stray far-away cells and save again, or save as CSV")
    return rows or None
