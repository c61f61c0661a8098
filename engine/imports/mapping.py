"""Column mappings: which Chinese headers of an office's export mean which of rollout's fields.

The platforms name the same column differently (教师姓名, 姓名, 学员姓名 …), so the built-in mapping
(``mappings/provincial-platform.yaml``) lists each field's headers, and an office's own file need
name only the fields whose headers differ: its lists replace the built-in ones field by field.
Headers compare after folding width, spaces, ``*``, ``_`` and ``-`` (``normalise_header``).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ImportFileError, Problem
from engine.i18n import tr
from engine.yaml_source import check_yaml

DEFAULT_MAPPING_PATH = Path(__file__).resolve().parents[2] / "mappings" / "provincial-platform.yaml"
SECTIONS = ("regions", "schools", "teachers")
_SECTION_ALIASES = {"region": "regions", "school": "schools", "teacher": "teachers"}

ColumnMapping = dict[str, dict[str, tuple[str, ...]]]


def normalise_header(text: str) -> str:
    """Fold a header so '教师 姓名', '＊教师姓名' and '教师姓名　' all compare equal."""
    folded = unicodedata.normalize("NFKC", text)
    folded = "".join(folded.split()).lstrip("*").replace("_", "").replace("-", "")
    return folded.casefold()


def _mapping_error(source: str, message: str) -> ImportFileError:
    return ImportFileError(source, [Problem(source, message)])


def _parse_mapping(data: Any, source: str) -> ColumnMapping:
    if not isinstance(data, dict):
        raise _mapping_error(source, tr("映射文件应为“分节: {字段: [列名…]}”结构", "a mapping file must be 'section: {field: [header, …]}'"))
    problems: list[Problem] = []
    result: ColumnMapping = {}
    for raw_section, fields in data.items():
        section = _SECTION_ALIASES.get(str(raw_section), str(raw_section))
        if section not in SECTIONS:
            problems.append(Problem(source, tr(f"未知分节“{raw_section}”，应为 {'、'.join(SECTIONS)}", f"unknown section '{raw_section}', expected one of {', '.join(SECTIONS)}")))
            continue
        if not isinstance(fields, dict):
            problems.append(Problem(source, tr(f"分节“{raw_section}”应为“字段: [列名…]”", f"section '{raw_section}' must map fields to header lists"), field=str(raw_section)))
            continue
        out: dict[str, tuple[str, ...]] = {}
        for name, headers in fields.items():
            if isinstance(headers, str):
                headers = [headers]
            if not isinstance(headers, list) or not headers or not all(isinstance(h, str | int) for h in headers):
                problems.append(Problem(source, tr("列名应为非空的文字列表", "headers must be a non-empty list of text"), field=f"{section}.{name}"))
                continue
            out[str(name)] = tuple(str(h) for h in headers)
        result[section] = out
    if problems:
        raise ImportFileError(source, problems)
    return result


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
        bounds = check_yaml(text, str(path))
        if bounds:
            raise ImportFileError(str(path), bounds)
        return yaml.safe_load(text)
    except OSError as exc:
        raise _mapping_error(str(path), tr(f"无法读取映射文件：{exc.strerror}", f"cannot read mapping file: {exc.strerror}")) from exc
    except UnicodeDecodeError as exc:
        raise _mapping_error(str(path), tr(f"映射文件不是 UTF-8 编码（第 {exc.start} 字节）", f"mapping file is not UTF-8 (byte {exc.start})")) from exc
    except yaml.YAMLError as exc:
        raise _mapping_error(str(path), tr(f"映射文件不是有效的 YAML：{exc}", f"mapping file is not valid YAML: {exc}")) from exc


def load_mapping(path: str | Path | None = None) -> ColumnMapping:
    """The built-in mapping, with a custom file's fields laid over it (a field it names replaces
    that field's header list; sections and fields it leaves out keep the built-in headers)."""
    base = _parse_mapping(_read_yaml(DEFAULT_MAPPING_PATH), str(DEFAULT_MAPPING_PATH))
    if path is None:
        return base
    custom = _parse_mapping(_read_yaml(Path(path)), str(path))
    for section, fields in custom.items():
        base[section] = {**base.get(section, {}), **fields}
    return base


def resolve_mapping(mapping: ColumnMapping | str | Path | None) -> ColumnMapping:
    """Accept what the import functions accept: a loaded mapping, a mapping file, or None."""
    if mapping is None or isinstance(mapping, str | Path):
        return load_mapping(mapping)
    return mapping
