"""The region file marks the directly administered counties (省直管): they go under the province."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.db import transaction
from engine.errors import ImportFileError
from engine.imports import import_regions
from engine.models import Region
from tests.engine.henan import write_csv


def test_direct_column_puts_the_county_under_the_province(factory, tmp_path) -> None:
    rows = [["410000", "河南省", ""], ["410100", "郑州市", ""], ["410181", "巩义市", "是"], ["410102", "中原区", "否"]]
    with transaction(factory) as s:
        import_regions(s, write_csv(tmp_path / "r.csv", ["行政区划代码", "行政区划名称", "省直管"], rows))
    with transaction(factory) as s:
        assert {c: p for c, p in s.execute(select(Region.code, Region.parent_code))} == {
            "410000": None, "410100": "410000", "410181": "410000", "410102": "410100"}


def test_direct_column_problems_name_row_and_field(factory, tmp_path) -> None:
    rows = [["410000", "河南省", "", ""], ["410100", "郑州市", "是", ""], ["410181", "巩义市", "也许", ""],
            ["410182", "荥阳市", "是", "410100"]]
    path = write_csv(tmp_path / "r.csv", ["行政区划代码", "行政区划名称", "省直管", "上级区划代码"], rows)
    with transaction(factory) as s, pytest.raises(ImportFileError) as info:
        import_regions(s, path)
    found = {(p.line, p.field): p.message for p in info.value.problems}
    assert set(found) == {(3, "省直管"), (4, "省直管"), (5, "省直管")}, found
    assert "只有县级" in found[(3, "省直管")] and "也许" in found[(4, "省直管")] and "410100" in found[(5, "省直管")]
    with transaction(factory) as s:
        assert s.scalars(select(Region)).all() == []
