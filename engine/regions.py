"""Which schools a region holds, as a WHERE clause the database can answer from one index.

A school row carries its county, city and province codes, so "the schools of region R" is
``county = R OR city = R OR province = R``. That OR cannot use an index: a county officer's
overview scanned all 50,000 schools of a province to find their 327 (150 ms of a 50 ms budget).
Region codes are unique across levels, so once the region's level is known the one column of that
level gives exactly the same rows, through its index.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from engine.models import Region, School

LEVEL_COLUMN = {"province": School.province_code, "city": School.city_code, "county": School.county_code}


def any_level_clause(region: str) -> ColumnElement[bool]:
    """The schools of ``region`` at whatever level it is (no lookup; no index either)."""
    return or_(School.county_code == region, School.city_code == region, School.province_code == region)


def region_level(session: Session, region: str) -> str | None:
    """``region``'s level, looked up once per session (a page asked for it a dozen times: 12 round
    trips to PostgreSQL). The region tree changes only by a region import, in its own session."""
    known: dict[str, str | None] = session.info.setdefault("region_levels", {})
    if region not in known:
        known[region] = session.scalar(select(Region.level).where(Region.code == region))
    return known[region]


def region_clause(session: Session, region: str) -> ColumnElement[bool]:
    """The schools of ``region``, by the column of its level; the three-way test for a code the
    region tree does not hold (which then matches what it always matched)."""
    level = region_level(session, region)
    column = LEVEL_COLUMN.get(level or "")
    return column == region if column is not None else any_level_clause(region)
