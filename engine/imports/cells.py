"""The cells of a progress export that need more than a lookup: hours, the chosen capability
points (numbers or the platforms' codes), and the national ID number a platform id must not be;
and the yes/no and 学校标识码 cells the region, school and per-school entry files share.

Rules from the seeds: each teacher studies online ≥ 25 hours and practises ≥ 25 hours in school
(000 "选学内容不少于25学时"; 001 "每位教师从30个微能力点中选取3个能力点学习"), so points are numbers
1..30, at most three, and evidence is counted per chosen point.
"""

from __future__ import annotations

import re
from functools import lru_cache

from engine.i18n import language, tr
from engine.imports.staging import Problems, check_code, fold, missing
from engine.imports.tabular import Column

MAX_HOURS = 1000.0  # far above the programme's 50 hours: anything more is a typo or a unit mix-up
POINTS = range(1, 31)  # 001 attachment 3: the 30 micro-capability points
MAX_POINTS = 3
RESULTS = {
    "合格": "pass", "通过": "pass", "pass": "pass", "passed": "pass",
    # A four-grade scale (优秀/良好/合格/不合格) is common; 良好 is a pass that is not 优秀.
    "良好": "pass",
    "优秀": "excellent", "excellent": "excellent",
    "不合格": "fail", "未通过": "fail", "fail": "fail", "failed": "fail",
}
_POINT_SEPARATORS = re.compile(r"[,，、;；\s]+")
# The platforms' codes for the 30 points: the environment letter and the number within it. 001
# attachment 3 numbers the points 1–30 by environment — multimedia 1–13 (A1–A13), blended 14–23
# (B1–B10), smart 24–30 (C1–C7) — so "B3" is point 16 (探究型学习活动设计). Refusing `A1,B3` also
# drew a second, knock-on error on 提交作品数 (issue 17, 3).
_ENVIRONMENTS = {"A": (0, 13), "B": (13, 10), "C": (23, 7)}
_PLATFORM_CODE = re.compile(r"^([ABC])(\d{1,2})$")


def point_number(token: str) -> int:
    """'16' or 'B3' → 16; 0 for anything that is not one of the 30 points."""
    if token.isascii() and token.isdigit():
        return int(token)
    match = _PLATFORM_CODE.match(token.upper())
    if match:
        offset, size = _ENVIRONMENTS[match.group(1)]
        n = int(match.group(2))
        return offset + n if 1 <= n <= size else 0
    return 0
_ID_NUMBER = re.compile(r"^\d{17}[\dXx]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def looks_like_id_number(value: str) -> bool:
    """An 18-character resident ID number with a valid GB 11643 check digit."""
    if not _ID_NUMBER.match(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()


def parse_points(value: str) -> tuple[tuple[int, ...], str | None]:
    """'3,11,15', '3、11、15', '3;11;15' or '3 11 15' → sorted numbers, or a problem in words."""
    return _parse_points(value, language())


@lru_cache(maxsize=1 << 16)
def _parse_points(value: str, _lang: str) -> tuple[tuple[int, ...], str | None]:
    # Cached: a province's million rows hold a few thousand distinct choices of 3 of 30 points.
    text = value.strip()
    if not text:
        return (), None
    points: list[int] = []
    for token in _POINT_SEPARATORS.split(fold(text)):
        if not token:
            continue
        number = point_number(token)
        if number not in POINTS:
            return (), tr(
                f"能力点“{token}”不存在：应为 1–30 的编号或平台代码 A1–A13、B1–B10、C1–C7，用逗号或顿号分隔",
                f"unknown capability point '{token}': use numbers 1–30 or the platform codes A1–A13, B1–B10, "
                "C1–C7, separated by commas",
            )
        if number in points:
            return (), tr(f"能力点 {number} 重复", f"capability point {number} listed twice")
        points.append(number)
    if len(points) > MAX_POINTS:
        return (), tr(
            f"选了 {len(points)} 个能力点：每位教师选 3 个（不超过 3 个）",
            f"{len(points)} capability points chosen: each teacher chooses 3 (at most 3)",
        )
    return tuple(sorted(points)), None


_PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def parse_hours(value: str) -> tuple[float | None, str | None]:
    """Plain decimals only: float() would also take ``2_5`` (25), ``1e2`` (100), ``nan`` and ``inf``."""
    text = fold(value)
    if not text:
        return None, missing("学时", "hours")
    if not _PLAIN_DECIMAL.match(text):
        return None, tr(f"学时“{text}”不是数字：请写成 25 或 25.5 这样的普通小数",
                        f"hours '{text}' is not a number: write a plain decimal such as 25 or 25.5")
    hours = float(text)
    if hours < 0:
        return None, tr(f"学时“{text}”不能为负数", f"hours '{text}' must not be negative")
    if hours > MAX_HOURS:
        return None, tr(f"学时 {text} 超过上限 {MAX_HOURS:g}，请核对", f"hours {text} above the cap of {MAX_HOURS:g}: check the file")
    return hours, None


_TRUE = {"是", "y", "yes", "1", "true", "t", "√", "✓"}
_FALSE = {"否", "n", "no", "0", "false", "f", "×", "✗"}


def parse_bool(value: str) -> bool | None:
    """是/否, Y/N, 1/0, true/false as spreadsheets write them; None when it is none of those."""
    word = fold(value).casefold()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


BOOL_WORDS = "是/否、Y/N、1/0、true/false"


def school_code_cell(cells: dict[str, str], columns: dict[str, Column], number: int, problems: Problems) -> str | None:
    """A bulk file's 学校标识码 cell checked (10 digits), or None with the problem listed — the one
    check every per-school entry file (facts, extensions, contractors) starts its row with."""
    code, error = check_code(cells["code"], 10, "学校标识码", "school code")
    if error or code is None:
        problems.add(number, columns["code"], error or missing("学校标识码", "school code"))
        return None
    return code
