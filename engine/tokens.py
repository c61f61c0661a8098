"""Service accounts and their API tokens: how a platform pushes data without a person signing in.

Seed 000 §2 asks cities on their own platforms to hand data up "通过接口或导入". A platform gets a
service account — a ``User`` with a role and a scope like any office account, so every rule in
``engine/access.py`` applies to it unchanged — that can never sign in with a password, and tokens
for it. A token is shown once, when issued; only its SHA-256 is stored (a token is 32 random bytes,
so a fast hash is enough, unlike a password). Tokens expire (365 days unless told otherwise), can
be revoked, and each is throttled to ``RATE_LIMIT`` requests a minute, counted in one atomic
UPDATE so it holds across worker processes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from engine.accounts import UserError, add_user, find_user
from engine.clock import Clock
from engine.errors import NotFound, RolloutError
from engine.i18n import tr
from engine.models import User
from engine.records import ApiToken

PREFIX = "rlt_"
NO_PASSWORD = "!service-account"  # not an argon2 hash: a password sign-in is always refused
DEFAULT_DAYS = 365
MAX_DAYS = 3 * 365
RATE_LIMIT = 60  # requests per token per minute
WINDOW = timedelta(minutes=1)


class TokenRefused(RolloutError):
    """A request's token is unknown, expired or revoked, or its account disabled (401)."""


class Throttled(RolloutError):
    """A token sent more than RATE_LIMIT requests this minute (429)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_service_account(user: User) -> bool:
    return user.password_hash == NO_PASSWORD


@dataclass(frozen=True)
class TokenInfo:
    """What ``tokens list`` shows: never the token, only its first characters."""

    name: str
    role: str
    scope: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def add_token(session: Session, clock: Clock, *, name: str, role: str | None = None, scope: str | None = None,
              days: int = DEFAULT_DAYS) -> str:
    """Issue a token for the service account ``name``, creating the account (``role`` and
    ``scope`` required then, checked like a user's) when it does not exist. Returns the token:
    the only time it is ever shown."""
    if not 1 <= days <= MAX_DAYS:
        raise UserError(tr(f"有效期应为 1 到 {MAX_DAYS} 天", f"the validity must be 1 to {MAX_DAYS} days"))
    existing = session.scalar(select(User).where(User.username == name))
    if existing is None:
        if not role or not scope:
            raise UserError(tr("新的服务账号需要 --role 和 --scope", "a new service account needs --role and --scope"))
        # add_user checks the name, the role and that the scope fits the role; the password it
        # hashes is thrown away at once.
        user = add_user(session, clock, username=name, role=role, scope=scope,
                        password=secrets.token_urlsafe(32), display_name=name)
        user.password_hash = NO_PASSWORD
    elif not is_service_account(existing):
        raise UserError(tr(f"{name} 是普通用户，不是服务账号", f"{name} is a person's account, not a service account"))
    elif (role and role != existing.role) or (scope and scope != existing.scope_code):
        raise UserError(tr(f"服务账号 {name} 已存在，角色和范围不能改", f"service account {name} exists: its role and scope cannot change"))
    else:
        user = existing
    token = PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token), prefix=token[:12], created_at=now,
                         expires_at=now + timedelta(days=days), window_count=0))
    session.flush()
    return token


def list_tokens(session: Session) -> list[TokenInfo]:
    rows = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                           .order_by(User.username, ApiToken.id))
    return [TokenInfo(u.username, u.role, u.scope_code, t.prefix, t.created_at, t.expires_at, t.revoked_at,
                      t.last_used_at) for t, u in rows]


def revoke_tokens(session: Session, clock: Clock, name: str, prefix: str | None = None) -> int:
    """Revoke the service account's tokens (or the one starting with ``prefix``); how many."""
    user = find_user(session, name)
    if not is_service_account(user):
        raise UserError(tr(f"{name} 不是服务账号", f"{name} is not a service account"))
    query = update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if prefix:
        query = query.where(ApiToken.prefix == prefix[:12])
    count = int(getattr(session.execute(query.values(revoked_at=clock.now())), "rowcount", 0))
    if prefix and count == 0:
        raise NotFound(tr(f"{name} 没有以 {prefix} 开头的有效令牌", f"{name} has no live token starting {prefix}"))
    return count


def token_user(session: Session, clock: Clock, token: str) -> User:
    """The service account a request's bearer token belongs to, the request counted against its
    throttle; TokenRefused or Throttled otherwise (one message for every kind of bad token)."""
    refused = TokenRefused(tr("API 令牌无效、已过期或已吊销", "the API token is invalid, expired or revoked"))
    if not token.startswith(PREFIX) or len(token) > 100:
        raise refused
    now = clock.now()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise refused
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise refused
    fresh = (ApiToken.window_start.is_(None)) | (ApiToken.window_start <= now - WINDOW)
    session.execute(update(ApiToken).where(ApiToken.id == row.id).values(
        window_start=case((fresh, now), else_=ApiToken.window_start),
        window_count=case((fresh, 1), else_=ApiToken.window_count + 1),
        last_used_at=now).execution_options(synchronize_session=False))
    count = session.scalar(select(ApiToken.window_count).where(ApiToken.id == row.id))
    if (count or 0) > RATE_LIMIT:
        raise Throttled(tr(f"请求过于频繁（每分钟最多 {RATE_LIMIT} 次），请稍后再试",
                           f"too many requests (at most {RATE_LIMIT} a minute): try again shortly"))
    return user
