"""Web users: argon2 password hashes, scopes, and the lock-out after repeated failed logins.

Plain functions over a session so the CLI (``rollout users``) and the login page share one set of
rules. Time comes from the injected Clock, so lock-out expiry is testable without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import NotFound, RolloutError
from engine.i18n import tr
from engine.models import Region, School, User

ROLES = ("province_office", "city_office", "county_office", "school_admin", "supervisor")
REGION_LEVEL = {"province_office": "province", "city_office": "city", "county_office": "county"}
MAX_FAILED = 5
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 8

_hasher = PasswordHasher()


class UserError(RolloutError):
    """A user record cannot be created or changed as asked."""


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    message: str  # empty on success


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(tr(f"密码至少 {MIN_PASSWORD} 个字符", f"a password needs at least {MIN_PASSWORD} characters"))
    return _hasher.hash(password)


def _check_scope(session: Session, role: str, scope: str) -> None:
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


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(tr(f"没有用户 {username}", f"no user {username}"))
    return user


def add_user(session: Session, clock: Clock, *, username: str, role: str, scope: str, password: str,
             display_name: str | None = None) -> User:
    """Create a user; a region role must be scoped to a region of its own level, a school admin to a school."""
    if not username.strip():
        raise UserError(tr("用户名不能为空", "the username is empty"))
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(tr(f"用户 {username} 已存在", f"user {username} already exists"))
    _check_scope(session, role, scope)
    user = User(username=username, display_name=display_name or username, role=role, scope_code=scope,
                password_hash=hash_password(password), active=True, failed_logins=0, locked_until=None,
                created_at=clock.now())
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def disable_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    user.active = False
    return user


def set_password(session: Session, username: str, password: str) -> User:
    """A new password also lifts a lock-out: an administrator resetting it vouches for the user."""
    user = find_user(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    return user


def authenticate(session: Session, clock: Clock, username: str, password: str) -> LoginResult:
    """Check a login; records failures and locks the account for 15 minutes after 5 in a row.

    The message never says whether the user exists or which part was wrong.
    """
    wrong = tr("用户名或密码错误", "wrong username or password")
    user = session.scalar(select(User).where(User.username == username))
    now = clock.now()
    if user is None or not user.active:
        return LoginResult(None, wrong)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, tr("登录失败次数过多，账号已暂时锁定，请稍后再试",
                                    "too many failed logins: the account is locked for a while"))
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED:
            user.locked_until = now + LOCK_FOR
            user.failed_logins = 0
        return LoginResult(None, wrong)
    user.failed_logins = 0
    user.locked_until = None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return LoginResult(user, "")
