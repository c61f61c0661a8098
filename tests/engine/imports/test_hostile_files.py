"""Hostile and careless office files (issue 12, Medium 5 and 6, and the import items of Low).

Every file here used to end in a traceback, a crashed process or wrong data: a 5 KB XLSX with one
value in XFD1048576 made calamine abort the process (549 GB asked for), an unlabelled trailing cell
was stored as 测评结果, a BOM before GBK bytes, a field over 131,072 characters, a NUL byte and a
damaged XLSX were tracebacks. Each must now be one clear error naming the file (and the row where
there is one), with nothing written.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.errors import ImportFileError
from engine.imports import estimate_rows, import_progress
from engine.imports.cells import parse_hours
from engine.imports.workbook import MAX_CELLS, check_workbook
from engine.models import Teacher
from tests.engine.imports.test_progress import (
    GOOD,
    HEADER,
    schools,
    snapshot,
    write_csv,
    write_xlsx,
)

__all__ = ["schools"]  # the fixture, shared with test_progress.py
REPO = Path(__file__).resolve().parents[3]


def _far_cell(path: Path, cell: str = "XFD1048576", dimension: str | None = None) -> Path:
    """An XLSX of a few KB with one value in ``cell`` (Excel writes such files when a clerk types
    into a far corner by mistake)."""
    plain = write_xlsx(path.with_suffix(".plain.xlsx"), [HEADER, GOOD[1]])
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                row = cell.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                data = data.replace(b"</sheetData>", f'<row r="{row}"><c r="{cell}" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'.encode())
                if dimension:
                    data = data.replace(b'<dimension ref="A1:H2" />', f'<dimension ref="{dimension}" />'.encode())
            out.writestr(info, data)
    return path


def test_a_far_cell_is_refused_before_calamine_reads_it(schools: Engine, tmp_path: Path) -> None:
    path = _far_cell(tmp_path / "far.xlsx")
    assert path.stat().st_size < 10_000
    before = snapshot(schools)
    with pytest.raises(ImportFileError, match="范围过大") as caught:
        import_progress(schools, path)
    assert str(path) in str(caught.value) and snapshot(schools) == before


def test_the_far_cell_no_longer_kills_the_process(tmp_path: Path) -> None:
    """Run in a child process: on main this very import aborted the interpreter (SIGABRT)."""
    path = _far_cell(tmp_path / "far.xlsx")
    code = ("import sys\nfrom engine.imports import open_table\nfrom engine.errors import ImportFileError\n"
            "try:\n    t = open_table(sys.argv[1], {'a': ('教师编号',)}, ['a'])\n    list(t)\n"
            "except ImportFileError as e:\n    print(e); sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, (done.returncode, done.stderr[-500:])
    assert "范围过大" in done.stdout


def test_a_declared_dimension_that_is_absurd(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="声明的范围过大"):
        check_workbook(_far_cell(tmp_path / "d.xlsx", cell="B3", dimension="A1:XFD1048576"))
    assert check_workbook(_far_cell(tmp_path / "ok.xlsx", cell="Z40")) == 40  # a wide-ish sheet is fine
    assert MAX_CELLS >= 1_048_576 * 26  # a full-height sheet of 26 columns still imports


def test_a_zip_bomb_is_refused(tmp_path: Path) -> None:
    plain = write_xlsx(tmp_path / "plain.xlsx", [HEADER, GOOD[1]])
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info, src.read(info.filename))
        out.writestr("xl/media/padding.bin", b"\0" * (64 << 20))  # 64 MB of zeros in ~64 KB
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ImportFileError, match="压缩炸弹"):
        check_workbook(bomb)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"not a zip at all", None])
def test_empty_truncated_and_non_zip_xlsx(schools: Engine, tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "p.xlsx"
    if content is None:  # a real workbook cut in half
        full = write_xlsx(tmp_path / "full.xlsx", [HEADER, *GOOD[1:]]).read_bytes()
        content = full[: len(full) // 2]
    path.write_bytes(content)
    assert estimate_rows(path) is None  # the progress bar gives up quietly; the import says why
    with pytest.raises(ImportFileError, match="XLSX"):
        import_progress(schools, path)


def test_an_unlabelled_trailing_cell_is_an_error_naming_the_row(schools: Engine, tmp_path: Path) -> None:
    """With no 测评结果 header, a trailing 不合格 was stored as evidence_result=fail."""
    rows = [HEADER[:7], GOOD[1][:7] + ["不合格"], GOOD[2][:7]]
    with pytest.raises(ImportFileError) as caught:
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, 8) and "没有表头" in problem.message
    assert snapshot(schools) == []


def test_a_bad_value_in_an_unlabelled_cell_is_no_traceback(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER[:6], GOOD[1][:6] + ["", "maybe"]]  # was a KeyError for the missing column
    with pytest.raises(ImportFileError, match="第 2 行第 8 列"):
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))


def test_an_unmapped_labelled_column_is_not_read_as_a_field(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER[:7] + ["备注"], GOOD[1][:7] + ["不合格"]]
    import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    column = list(Teacher.__table__.columns.keys()).index("evidence_result")
    assert snapshot(schools)[0][column] is None  # evidence_result stays empty: 备注 is not 测评结果


def test_bom_before_gbk_bytes(schools: Engine, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(",".join(r) for r in GOOD).encode("gbk"))
    with pytest.raises(ImportFileError, match="编码"):
        import_progress(schools, path)


def test_a_field_over_the_csv_limit(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER, GOOD[1], GOOD[2][:1] + ["x" * 140_000] + GOOD[2][2:]]
    with pytest.raises(ImportFileError, match="第 3 行"):
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert snapshot(schools) == []


def test_a_nul_byte(schools: Engine, tmp_path: Path) -> None:
    """Reached PostgreSQL's COPY as a DataError."""
    rows = [HEADER, GOOD[1], ["T00\x0003"] + GOOD[3][1:]]
    with pytest.raises(ImportFileError, match="NUL"):
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert snapshot(schools) == []


def test_names_lose_control_characters_and_escapes(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER, ["T0001", "\x1b[31m张三\x1b[0m\x07", *GOOD[1][2:]]]
    import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert snapshot(schools)[0][2] == "张三"


@pytest.mark.parametrize("text,words", [("2_5", "不是数字"), ("1e2", "不是数字"), ("nan", "不是数字"), ("inf", "不是数字"),
                                        ("-1", "负数"), ("25.", "不是数字"), (" ２５ ", None), ("25.5", None)])
def test_hours_are_plain_decimals(text: str, words: str | None) -> None:
    """``2_5`` was read as 25, ``1e2`` as 100, and NaN/inf were called negative."""
    value, problem = parse_hours(text)
    if words is None:
        assert problem is None and value in (25.0, 25.5)
    else:
        assert value is None and problem is not None and words in problem
