"""Web users: argon2 password hashes, password rules, scopes, and what stops password guessing.

Plain functions over a session so the CLI (``rollout users``) and the login page share one set of
rules. Time comes from the injected Clock, so lock-out expiry is testable without sleeping.

Guessing is bounded three ways, each counted by **one atomic UPDATE (or upsert) before the
password is checked**, so that parallel requests cannot all read "not locked yet" and then all
check a password (30 parallel logins used to check 29 wrong passwords and leave the counter at 2):

* per account: the 5th attempt in a row locks the account for 15 minutes (an attempt is counted
  when it starts; a success resets the count);
* per client address: at most ``CLIENT_ATTEMPTS`` failed attempts per ``CLIENT_WINDOW``, whatever
  the usernames, so locking other people out is not free (a success gives its attempt back);
* timing: an unknown, disabled or locked account costs one argon2 verification like a real one,
  and every refusal reads the same, so neither the time nor the words say whether a user exists.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Table, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.db import UTCDateTime
from engine.errors import NotFound, RolloutError
from engine.i18n import tr
from engine.imports.staging import fold
from engine.models import LoginThrottle, Region, School, SchoolRun, User, WebSession
from engine.text import clean_line

ROLES = ("province_office", "city_office", "county_office", "school_admin", "supervisor", "contractor")
REGION_LEVEL = {"province_office": "province", "city_office": "city", "county_office": "county"}
MAX_FAILED = 5
LOCK_FOR = timedelta(minutes=15)
CLIENT_ATTEMPTS = 20  # failed sign-ins one address may make per window: 4 accounts' worth of lock-outs
CLIENT_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 8
MAX_PASSWORD = 128  # argon2 takes any length; zxcvbn's cost grows with it
MIN_STRENGTH = 3  # zxcvbn score 0–4: 3 = "safely unguessable" (refuses top passwords and their variants)
MAX_USERNAME = 60  # the column's width

_hasher = PasswordHasher()
_dummy: dict[int, str] = {}


class UserError(RolloutError):
    """A user record cannot be created or changed as asked."""


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    message: str  # empty on success


def check_password(password: str, *context: str) -> None:
    """Refuse short, overlong and guessable passwords, judged by zxcvbn (its lists of common
    passwords, words, names, keyboard patterns and dates), with the username and display name
    counted as known words."""
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD:
        raise UserError(tr(f"密码至少 {MIN_PASSWORD} 个字符", f"a password needs at least {MIN_PASSWORD} characters"))
    if len(password) > MAX_PASSWORD:
        raise UserError(tr(f"密码最多 {MAX_PASSWORD} 个字符", f"a password has at most {MAX_PASSWORD} characters"))
    verdict = zxcvbn(password, user_inputs=[c for c in context if c])
    if verdict["score"] < MIN_STRENGTH:
        raise UserError(tr("密码太容易被猜中（常用密码、常见词或键盘顺序、含用户名等）：请换一个更长、更不常见的密码",
                           "the password is too easy to guess (a common password, a common word or keyboard "
                           "pattern, the username …): choose a longer, less common one"))


def hash_password(password: str, *context: str) -> str:
    check_password(password, *context)
    return _hasher.hash(password)


def contractor_in(session: Session, contractor: str | None, region: str) -> bool:
    """Whether ``contractor`` has at least one school assigned (a run not withdrawn) in ``region``."""
    in_region = (School.county_code == region) | (School.city_code == region) | (School.province_code == region)
    found = (select(SchoolRun.id).join(School, School.code == SchoolRun.school_code)
             .where(SchoolRun.contractor == contractor, SchoolRun.withdrawn_at.is_(None), in_region).limit(1))
    return bool(contractor) and session.scalar(found) is not None


def _check_scope(session: Session, role: str, scope: str, contractor: str | None = None) -> None:
    if role not in ROLES:
        raise UserError(tr(f"未知角色 {role}（可选：{'、'.join(ROLES)}）", f"unknown role {role} (one of: {', '.join(ROLES)})"))
    if role == "school_admin":
        if session.get(School, scope) is None:
            raise UserError(tr(f"没有学校 {scope}", f"no school {scope}"))
        return
    region = session.get(Region, scope)
    if region is None:
        raise UserError(tr(f"没有行政区划 {scope}", f"no region {scope}"))
    level = REGION_LEVEL.get(role)
    if level is not None and region.level != level:
        raise UserError(tr(f"角色 {role} 的范围必须是{level}级区划，{scope} 是 {region.level}",
                           f"role {role} needs a {level} region, {scope} is a {region.level}"))
    if (role == "contractor") != bool(contractor):
        raise UserError(tr("承训单位账号须指明承训单位名称（其他角色不能指明）",
                           "a contractor account names its contractor (and no other role does)"))
    if role == "contractor" and not contractor_in(session, contractor, scope):
        raise UserError(tr(f"承训单位“{contractor}”在 {scope} 没有分配学校（先导入承训单位分配表）",
                           f"contractor '{contractor}' has no schools assigned in {scope} (import the assignment first)"))


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(tr(f"没有用户 {username}", f"no user {username}"))
    return user


def add_user(session: Session, clock: Clock, *, username: str, role: str, scope: str, password: str,
             display_name: str | None = None, contractor: str | None = None) -> User:
    """Create a user; a region role must be scoped to a region of its own level, a school admin to a
    school, a contractor to a region where its contractor (named, 承训单位) has schools assigned."""
    username = clean_line(username, tr("用户名", "username"), MAX_USERNAME)
    if not username:
        raise UserError(tr("用户名不能为空", "the username is empty"))
    display = clean_line(display_name or username, tr("姓名", "display name"), 100) or username
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(tr(f"用户 {username} 已存在", f"user {username} already exists"))
    contractor = clean_line(fold(contractor), tr("承训单位", "contractor"), 100) if contractor else None
    _check_scope(session, role, scope, contractor)
    user = User(username=username, display_name=display, role=role, scope_code=scope, contractor=contractor,
                password_hash=hash_password(password, username, display), active=True, failed_logins=0,
                locked_until=None, created_at=clock.now())
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def disable_user(session: Session, username: str) -> User:
    """Disable a user and end every session they have (the next request signs them out)."""
    user = find_user(session, username)
    user.active = False
    end_sessions(session, user.id)
    return user


def set_password(session: Session, username: str, password: str) -> User:
    """A new password also lifts a lock-out (an administrator resetting it vouches for the user)
    and ends every session signed in with the old one."""
    user = find_user(session, username)
    user.password_hash = hash_password(password, user.username, user.display_name)
    user.failed_logins = 0
    user.locked_until = None
    end_sessions(session, user.id)
    return user


# --------------------------------------------------------------------------- signing in


def _burn(password: str) -> None:
    """One argon2 verification that fails, costing what a real one costs (same hasher, same
    parameters), so an unknown or locked account answers in the same time as a real one."""
    key = id(_hasher)
    if key not in _dummy:
        _dummy[key] = _hasher.hash(secrets.token_urlsafe(16))
    try:
        _hasher.verify(_dummy[key], password)
    except (VerificationError, InvalidHashError):
        return


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _claim_account(session: Session, user_id: int, now: datetime) -> bool:
    """Count an attempt on the account before its password is checked; False when it is locked.

    One UPDATE: the row lock (PostgreSQL) or the write lock (SQLite) serialises racing attempts,
    and each re-reads the row it changes, so the 5th attempt's lock is seen by the 6th. An
    expired lock starts the count again.
    """
    count = case((User.locked_until.is_not(None), 1), else_=User.failed_logins + 1)
    until = literal(now + LOCK_FOR, UTCDateTime())
    stmt = (update(User)
            .where(User.id == user_id, User.active, (User.locked_until.is_(None)) | (User.locked_until <= now))
            .values(failed_logins=count, locked_until=case((count >= MAX_FAILED, until), else_=None))
            .execution_options(synchronize_session=False))
    return _rows(session.execute(stmt)) == 1


def _claim_client(session: Session, client: str, now: datetime) -> bool:
    """Count an attempt from ``client`` in its window (one upsert); False once it has used them up."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = cast(Table, LoginThrottle.__table__)
    expired = table.c.window_start <= now - CLIENT_WINDOW
    upsert = insert(table).values(client=client, attempts=1, window_start=now)
    stmt = upsert.on_conflict_do_update(
        index_elements=[table.c.client],
        set_={"attempts": case((expired, 1), else_=table.c.attempts + 1),
              "window_start": case((expired, literal(now, UTCDateTime())), else_=table.c.window_start)},
        where=expired | (table.c.attempts < CLIENT_ATTEMPTS),
    ).returning(table.c.attempts)  # psycopg reports no rowcount for an upsert: count the rows it returns
    return session.execute(stmt).first() is not None


def _refund_client(session: Session, client: str, now: datetime) -> None:
    session.execute(update(LoginThrottle).where(LoginThrottle.client == client, LoginThrottle.attempts > 0)
                    .values(attempts=LoginThrottle.attempts - 1).execution_options(synchronize_session=False))
    session.execute(delete(LoginThrottle).where(LoginThrottle.window_start < now - CLIENT_WINDOW)
                    .execution_options(synchronize_session=False))


def refused_message() -> str:
    """The one answer to every failed sign-in: it never says whether the account exists or is locked."""
    return tr(f"用户名或密码错误；连续失败 {MAX_FAILED} 次的账号将锁定 15 分钟",
              f"wrong username or password; an account is locked for 15 minutes after {MAX_FAILED} failures in a row")


def authenticate(session: Session, clock: Clock, username: str, password: str, *, client: str = "") -> LoginResult:
    """Check a sign-in from ``client`` (an IP address). The attempt counts are written in the
    caller's transaction, which must commit whether or not the sign-in succeeds."""
    now = clock.now()
    if not _claim_client(session, client[:64], now):
        _burn(password)
        return LoginResult(None, tr("该地址登录尝试过多，请 15 分钟后再试", "too many sign-in attempts from this address: try again in 15 minutes"))
    user_id = session.scalar(select(User.id).where(User.username == username[:MAX_USERNAME], User.active))
    if user_id is None or not _claim_account(session, user_id, now):
        _burn(password)
        return LoginResult(None, refused_message())
    user = session.get(User, user_id, populate_existing=True)
    assert user is not None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return LoginResult(None, refused_message())
    user.failed_logins = 0
    user.locked_until = None
    _refund_client(session, client[:64], now)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return LoginResult(user, "")


# --------------------------------------------------------------------------- sessions


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, clock: Clock, user: User) -> str:
    """A new server-side session for ``user``; the returned token goes into the signed cookie."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_digest(token), user_id=user.id, created_at=clock.now()))
    session.flush()
    return token


def session_user(session: Session, clock: Clock, token: str, ttl: timedelta) -> User | None:
    """The active user a session token belongs to, or None when it was ended, expired or never existed."""
    row = session.get(WebSession, _digest(token))
    if row is None:
        return None
    if clock.now() - row.created_at > ttl:
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))


def end_sessions(session: Session, user_id: int) -> int:
    """End every session of a user (password changed, account disabled)."""
    return _rows(session.execute(delete(WebSession).where(WebSession.user_id == user_id)))
