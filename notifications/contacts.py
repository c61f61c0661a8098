"""Import who is notified where: one row per (region/school, level, channel, address).

Offices keep these lists in spreadsheets, with English or Chinese headers. The import is
all-or-nothing and reports every bad row at once (row number as Excel shows it, column, field).
A contact is keyed by (scope_code, level, channel, address): importing again updates the name,
secret name and language instead of duplicating. Secrets themselves never go in the file — only
their names (``secret_ref``), resolved by ``notifications.secrets`` at send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import Contact, Region, School, clean_line, tr
from engine.imports import Problems, check_code, fold, missing, open_table
from notifications.channels import CHANNEL_NAMES

FIELDS: dict[str, tuple[str, ...]] = {
    "scope_code": ("scope_code", "地区或学校代码", "代码"),
    "level": ("level", "级别"),
    "name": ("name", "名称"),
    "channel": ("channel", "渠道"),
    "address": ("address", "地址"),
    "secret_ref": ("secret_ref", "密钥名"),
    "lang": ("lang", "语言"),
}
REQUIRED = ("scope_code", "level", "name", "channel", "address")
LEVELS = {"school": "school", "学校": "school", "county": "county", "县": "county", "区县": "county",
          "city": "city", "市": "city", "province": "province", "省": "province"}
CHANNELS = {name: name for name in CHANNEL_NAMES} | {
    "邮件": "email", "电子邮件": "email", "钉钉": "dingtalk", "企业微信": "wecom", "飞书": "feishu", "文件": "file",
}
LANGS = {"zh": "zh", "中文": "zh", "en": "en", "英文": "en", "english": "en", "": "zh"}
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class ContactImportResult:
    source: str
    total: int
    inserted: int
    updated: int
    unchanged: int


def _check_address(channel: str, address: str) -> str | None:
    if channel == "email" and not all(_EMAIL.match(a.strip()) for a in address.split(",")):
        return tr(f"邮箱地址“{address}”格式不对", f"'{address}' is not an email address")
    if channel in ("dingtalk", "wecom", "feishu") and not re.match(r"^https?://\S+$", address):
        return tr(f"机器人地址“{address}”应为 http(s):// 开头的 Webhook 网址", f"robot address '{address}' must be an http(s):// webhook URL")
    if len(address) > 500:
        return tr("地址超过 500 个字符", "address is longer than 500 characters")
    return None


def import_contacts(session: Session, path: str | Path) -> ContactImportResult:
    """Validate the whole file, then upsert in the caller's transaction; raises ImportFileError."""
    problems = Problems(str(path))
    rows: list[tuple[int, dict[str, str | None]]] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    # A contact for a school or region nobody imported would never be notified: refuse it.
    school_codes = set(session.scalars(select(School.code)))
    region_levels: dict[str, str] = {}
    parents: dict[str, str | None] = {}
    for c, lv, parent in session.execute(select(Region.code, Region.level, Region.parent_code)):
        region_levels[c], parents[c] = lv, parent
    # 省直管县(市), 济源示范区: a county directly under its province is also a city-level unit (seed
    # 002 addresses them beside the 省辖市), so its office may take the city-level escalations.
    direct = {c for c, lv in region_levels.items() if lv == "county" and region_levels.get(parents[c] or "") == "province"}
    with open_table(path, FIELDS, REQUIRED, problems.source) as table:
        cols = table.columns
        for number, raw in table:
            row: dict[str, str | None] = {}
            level = LEVELS.get(fold(raw.get("level", "")).casefold())
            if level is None:
                problems.add(number, cols["level"], tr(f"级别“{raw.get('level')}”无效：应为 学校/县/市/省（school/county/city/province）", f"level '{raw.get('level')}' must be school/county/city/province"))
            digits = 10 if level == "school" else 6
            code, err = check_code(raw.get("scope_code", ""), digits, "地区或学校代码", "scope code")
            if err:
                problems.add(number, cols["scope_code"], err)
            elif code and level == "school" and code not in school_codes:
                problems.add(number, cols["scope_code"], tr(f"学校 {code} 不存在：请先导入学校", f"unknown school {code}: import the schools first"))
            elif code and level and level != "school" and region_levels.get(code) != level \
                    and not (level == "city" and code in direct):
                problems.add(number, cols["scope_code"], tr(
                    f"没有{level}级区划 {code}" if code not in region_levels else f"区划 {code} 是 {region_levels[code]} 级，不是 {level} 级",
                    f"no {level} region {code}" if code not in region_levels else f"region {code} is a {region_levels[code]}, not a {level}"))
            name = clean_line(fold(raw.get("name", "")), "", 10**6)
            if not name:
                problems.add(number, cols["name"], missing("名称", "name"))
            elif len(name) > 100:
                problems.add(number, cols["name"], tr("名称超过 100 个字", "name longer than 100 characters"))
            channel = CHANNELS.get(fold(raw.get("channel", "")).casefold())
            if channel is None:
                problems.add(number, cols["channel"], tr(f"渠道“{raw.get('channel')}”无效：应为 {'/'.join(CHANNEL_NAMES)}", f"channel '{raw.get('channel')}' must be one of {'/'.join(CHANNEL_NAMES)}"))
            address = fold(raw.get("address", ""))
            if not address:
                problems.add(number, cols["address"], missing("地址", "address"))
            elif channel and (bad := _check_address(channel, address)):
                problems.add(number, cols["address"], bad)
            secret_ref = fold(raw.get("secret_ref", "")) or None
            if secret_ref and not _SECRET_NAME.match(secret_ref):
                problems.add(number, cols.get("secret_ref"), tr(f"密钥名“{secret_ref}”只能含字母、数字、_ . -（这里只填名称，不填密钥本身）", f"secret name '{secret_ref}' may only contain letters, digits, _ . - (the name, never the secret itself)"))
            lang = LANGS.get(fold(raw.get("lang", "")).casefold())
            if lang is None:
                problems.add(number, cols.get("lang"), tr(f"语言“{raw.get('lang')}”无效：应为 zh 或 en", f"language '{raw.get('lang')}' must be zh or en"))
            if code and level and channel and address:
                key = (code, level, channel, address)
                if key in seen:
                    problems.add(number, cols["address"], tr(f"与第 {seen[key]} 行重复", f"duplicates row {seen[key]}"))
                seen.setdefault(key, number)
            row.update(scope_code=code, level=level, name=name, channel=channel, address=address,
                       secret_ref=secret_ref, lang=lang)
            rows.append((number, row))
    problems.raise_if_any()
    existing = {(c.scope_code, c.level, c.channel, c.address): c for c in session.scalars(select(Contact))}
    inserted = updated = 0
    for _, row in rows:
        key = (str(row["scope_code"]), str(row["level"]), str(row["channel"]), str(row["address"]))
        contact = existing.get(key)
        if contact is None:
            session.add(Contact(scope_code=key[0], level=key[1], channel=key[2], address=key[3],
                                name=row["name"], secret_ref=row["secret_ref"], lang=row["lang"], active=True))
            inserted += 1
        elif (contact.name, contact.secret_ref, contact.lang, contact.active) != (row["name"], row["secret_ref"], row["lang"], True):
            contact.name, contact.secret_ref = str(row["name"]), row["secret_ref"]
            contact.lang, contact.active = str(row["lang"]), True
            updated += 1
    session.flush()
    return ContactImportResult(str(path), len(rows), inserted, updated, len(rows) - inserted - updated)
