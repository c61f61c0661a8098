"""Accounts an office manages for its own subtree: add, disable, reset a password, add in bulk.

A province office manages every account of its province, a city its cities' counties and schools,
a county its schools and its own staff. The one rule (``may_grant``): an office may give an account
only a role at or below its own (province > city > county > school admin; a supervisor of any
level, since a supervisor only reads; a contractor account, 承训单位, for a contractor with schools
assigned in that scope, which then sees only those schools) and only a scope inside its own subtree. So no office can
make an account that sees or does more than it does itself. Every change is audited on the
account's chain (``user:<id>``), naming the office that made it.

A new account and a reset password get a random temporary password, shown once to the office, that
the user must change at the next sign-in (``must_change_password``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.access import Forbidden, region_subtree
from engine.accounts import (
    ROLES,
    UserError,
    add_user,
    authenticate,
    contractor_in,
    disable_user,
    find_user,
    set_password,
)
from engine.audit.chain import append_event
from engine.clock import Clock
from engine.errors import NotFound
from engine.i18n import tr
from engine.imports.staging import Problems
from engine.imports.tabular import open_table
from engine.models import School, User
from engine.text import clean_line

OFFICES = ("province_office", "city_office", "county_office")
RANK = {"province_office": 3, "city_office": 2, "county_office": 1, "school_admin": 0}
BULK_FIELDS = {
    "username": ("username", "用户名", "账号"),
    "display_name": ("display_name", "姓名", "显示名称", "名称"),
    "role": ("role", "角色"),
    "scope": ("scope", "范围", "地区或学校代码", "代码"),
    "contractor": ("contractor", "承训单位", "承办单位"),
}
ROLE_WORDS = {"省级项目办": "province_office", "市级项目办": "city_office", "县级项目办": "county_office",
              "学校管理员": "school_admin", "督导": "supervisor", "承训单位": "contractor",
              **{r: r for r in ROLES}}


_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I to misread


def temporary_password() -> str:
    """Random (~107 bits) and readable aloud; letters and digits only, so that no spreadsheet or
    formula neutralisation (engine/export.py) changes it on the way. Replaced at the next sign-in."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(6)) for _ in range(3))


def _within(session: Session, office: User, scope: str) -> bool:
    regions = region_subtree(session, office.scope_code)
    if scope in regions:
        return True
    school = session.get(School, scope)
    return school is not None and office.scope_code in (school.county_code, school.city_code, school.province_code)


def manages_accounts(user: User) -> bool:
    """Whether the user has an 账号管理 page at all (offices only)."""
    return user.role in OFFICES


def may_grant(session: Session, office: User, role: str, scope: str, contractor: str | None = None) -> str | None:
    """None when ``office`` may give an account ``role`` over ``scope``; else why not, in words.
    A contractor account (``contractor`` given) also needs that contractor's schools in ``scope``."""
    if office.role not in OFFICES:
        return tr("只有省、市、县项目办可以管理账号", "only province, city and county offices manage accounts")
    if role not in ROLES:
        return tr(f"未知角色 {role}", f"unknown role {role}")
    if role not in ("supervisor", "contractor") and RANK[role] > RANK[office.role]:
        return tr("不能授予比自己更高的角色", "an office cannot grant a role above its own")
    if not _within(session, office, scope):
        return tr(f"范围 {scope} 不在您的管辖范围内", f"scope {scope} is outside your region")
    if contractor is not None and role == "contractor" and not contractor_in(session, contractor, scope):
        return tr(f"承训单位“{contractor}”在范围 {scope} 内没有分配学校",
                  f"contractor '{contractor}' has no schools assigned in scope {scope}")
    return None


def require_grant(session: Session, office: User, role: str, scope: str, contractor: str | None = None) -> None:
    refusal = may_grant(session, office, role, scope, contractor)
    if refusal is not None:
        raise Forbidden(refusal)


def managed_users(session: Session, office: User) -> list[User]:
    """The accounts an office manages: those whose scope is in its subtree (itself included)."""
    if office.role not in OFFICES:
        raise Forbidden(tr("只有省、市、县项目办可以管理账号", "only province, city and county offices manage accounts"))
    regions = region_subtree(session, office.scope_code)
    schools = select(School.code).where(or_(School.county_code.in_(regions), School.province_code == office.scope_code))
    return list(session.scalars(select(User).where(or_(User.scope_code.in_(regions), User.scope_code.in_(schools)))
                                .order_by(User.username)))


def managed_user(session: Session, office: User, username: str) -> User:
    """An account the office manages; NotFound for any other (as for a school outside the region)."""
    try:
        user = find_user(session, username)
    except NotFound:
        user = None
    if user is None or may_grant(session, office, user.role, user.scope_code) is not None:
        raise NotFound(tr(f"没有用户 {username}", f"no user {username}"))
    return user


def _audit(session: Session, clock: Clock, office: User, user: User, trigger: str, reason: str) -> None:
    append_event(session, chain=f"user:{user.id}", at=clock.now(), actor=office.username, role=office.role,
                 trigger=trigger, reason=reason)


def office_add_user(session: Session, clock: Clock, office: User, *, username: str, role: str, scope: str,
                    display_name: str | None = None, contractor: str | None = None) -> tuple[User, str]:
    """Add an account the office may grant; returns it with its temporary password (shown once)."""
    contractor = (contractor or "").strip() or None
    require_grant(session, office, role, scope, contractor)
    password = temporary_password()
    user = add_user(session, clock, username=username, role=role, scope=scope, password=password,
                    display_name=display_name, contractor=contractor)
    user.must_change_password = True
    _audit(session, clock, office, user, "user_add", f"{user.username} {role} {scope}" + (f" {contractor}" if contractor else ""))
    return user, password


def office_disable_user(session: Session, clock: Clock, office: User, username: str) -> User:
    user = managed_user(session, office, username)
    if user.id == office.id:
        raise UserError(tr("不能停用自己的账号", "you cannot disable your own account"))
    disable_user(session, user.username)
    _audit(session, clock, office, user, "user_disable", user.username)
    return user


def office_reset_password(session: Session, clock: Clock, office: User, username: str) -> tuple[User, str]:
    """A new temporary password the user must change at the next sign-in; their sessions end."""
    user = managed_user(session, office, username)
    password = temporary_password()
    set_password(session, user.username, password)
    user.must_change_password = True
    _audit(session, clock, office, user, "user_reset_password", user.username)
    return user, password


def change_own_password(session: Session, clock: Clock, user: User, current: str, new: str, *,
                        client: str = "") -> None:
    """The user replaces their password (the temporary one after a reset); the current one is
    checked like a sign-in (lock-out and throttle count). Every session ends, this one too."""
    if authenticate(session, clock, user.username, current, client=client).user is None:
        raise UserError(tr("当前密码不对", "the current password is wrong"))
    if new == current:
        raise UserError(tr("新密码不能与当前密码相同", "the new password must differ from the current one"))
    set_password(session, user.username, new)
    user.must_change_password = False


@dataclass(frozen=True)
class Added:
    username: str
    display_name: str
    role: str
    scope: str
    password: str


def bulk_add_users(session: Session, clock: Clock, office: User, path: str | Path, source: str) -> list[Added]:
    """Add every account of a workbook (用户名, 姓名, 角色, 范围), all or nothing: every row's
    problem (a role or scope the office may not grant, a duplicate, an existing username) is listed
    with its row before anything is written."""
    problems = Problems(source)
    rows: list[tuple[int, str, str, str, str, str | None]] = []
    seen: dict[str, int] = {}
    existing = set(session.scalars(select(User.username)))
    with open_table(path, BULK_FIELDS, ("username", "role", "scope"), source) as table:
        cols = table.columns
        for number, cells in table:
            username = clean_line(cells["username"], "", 10**4)
            role = ROLE_WORDS.get(cells["role"].strip(), "")
            scope = cells["scope"].strip()
            display = clean_line(cells.get("display_name", ""), "", 10**4)[:100] or username
            contractor = clean_line(cells.get("contractor", ""), "", 10**4)[:100] or None
            if not username or len(username) > 60:
                problems.add(number, cols["username"], tr("用户名为空或超过 60 个字符", "username empty or longer than 60 characters"))
            elif username in existing:
                problems.add(number, cols["username"], tr(f"用户 {username} 已存在", f"user {username} already exists"))
            elif username in seen:
                problems.add(number, cols["username"], tr(f"与第 {seen[username]} 行重复", f"duplicates row {seen[username]}"))
            seen.setdefault(username, number)
            if not role:
                problems.add(number, cols["role"], tr(f"角色“{cells['role'][:40]}”无法识别", f"role '{cells['role'][:40]}' unknown"))
            elif (refusal := may_grant(session, office, role, scope, contractor)) is not None:
                problems.add(number, cols["scope"] if "范围" in refusal or "scope" in refusal else cols["role"], refusal)
            rows.append((number, username, display, role, scope, contractor))
    problems.raise_if_any()
    added: list[Added] = []
    for number, username, display, role, scope, contractor in rows:
        try:
            _user, password = office_add_user(session, clock, office, username=username, role=role, scope=scope,
                                              display_name=display, contractor=contractor)
        except UserError as exc:  # the scope does not fit the role (a county office over a school …)
            problems.add(number, cols["scope"], str(exc))
            continue
        added.append(Added(username, display, role, scope, password))
    problems.raise_if_any()  # the caller's transaction rolls back what was added before
    return added

