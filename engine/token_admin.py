"""API tokens an office manages in the web (issue 16): its platforms' service accounts, scoped like accounts.

The same rule as for people's accounts (``engine.account_admin.may_grant``): an office issues a
token only for a service account whose role is at or below its own and whose scope lies inside its
region, and sees and revokes only those. A token is shown once, in the answer that issued it;
issuing and revoking are audited on the service account's chain (``user:<id>``) with the token's
first characters, never the token.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.account_admin import managed_user, managed_users, require_grant
from engine.accounts import UserError
from engine.audit.chain import append_event
from engine.clock import Clock
from engine.i18n import tr
from engine.models import User
from engine.records import ApiToken
from engine.tokens import DEFAULT_DAYS, TokenInfo, add_token, is_service_account, revoke_tokens


def office_tokens(session: Session, office: User) -> list[TokenInfo]:
    """The tokens of the service accounts the office manages (Forbidden for anybody but an office)."""
    accounts = {u.id: u for u in managed_users(session, office) if is_service_account(u)}
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id.in_(accounts)).order_by(ApiToken.id))
    return [TokenInfo(accounts[t.user_id].username, accounts[t.user_id].role, accounts[t.user_id].scope_code,
                      t.prefix, t.created_at, t.expires_at, t.revoked_at, t.last_used_at) for t in rows]


def office_add_token(session: Session, clock: Clock, office: User, *, name: str, role: str, scope: str,
                     days: int = DEFAULT_DAYS) -> str:
    """A token for the service account ``name`` (created with ``role`` and ``scope`` if new, else one
    the office manages); returns the token, shown this once."""
    existing = session.scalar(select(User).where(User.username == name.strip()))
    if existing is None:
        require_grant(session, office, role, scope)
    else:
        existing = managed_user(session, office, existing.username)  # NotFound outside the office's region
        if not is_service_account(existing):
            raise UserError(tr(f"{existing.username} 是普通用户，不是服务账号",
                               f"{existing.username} is a person's account, not a service account"))
        role, scope = existing.role, existing.scope_code
    token = add_token(session, clock, name=name.strip(), role=role, scope=scope, days=days)
    account = session.scalars(select(User).where(User.username == name.strip())).one()
    _audit(session, clock, office, account, "token_add", f"{account.username} {token[:12]} {days}d")
    return token


def office_revoke_token(session: Session, clock: Clock, office: User, name: str, prefix: str) -> int:
    """Revoke one token (by its first characters) of a service account the office manages."""
    if not prefix.strip():
        raise UserError(tr("请指明要吊销的令牌", "say which token to revoke"))
    account = managed_user(session, office, name)
    count = revoke_tokens(session, clock, account.username, prefix)
    _audit(session, clock, office, account, "token_revoke", f"{account.username} {prefix[:12]}")
    return count


def _audit(session: Session, clock: Clock, office: User, account: User, trigger: str, reason: str) -> None:
    append_event(session, chain=f"user:{account.id}", at=clock.now(), actor=office.username, role=office.role,
                 trigger=trigger, reason=reason)
