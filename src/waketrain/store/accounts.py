"""Users, password hashing (argon2), browser sessions and API tokens."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from waketrain.store.errors import AuthenticationFailed, InvalidInput, NotFound
from waketrain.store.events import record_audit
from waketrain.store.health import require_dataset
from waketrain.store.models import AuthToken, User, utcnow
from waketrain.store.registry import Registry

ADMIN_USERNAME = "admin"
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who is making a request."""

    username: str
    is_admin: bool
    # Set for a board token: it may only add captures to this dataset.
    captures_for: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    kind: str
    expires_at: str | None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_admin(registry: Registry) -> str | None:
    """Create the admin user at first start; returns the password when it was generated here."""
    with registry.sessions.begin() as session:
        if session.scalar(select(User).where(User.username == ADMIN_USERNAME)) is not None:
            return None
        configured = registry.settings.admin_password
        password = configured or secrets.token_urlsafe(12)
        session.add(
            User(username=ADMIN_USERNAME, password_hash=_hasher.hash(password), is_admin=True)
        )
        record_audit(session, "system", "create", "user", ADMIN_USERNAME)
    return None if configured else password


@functools.cache
def _unknown_user_hash() -> str:
    """A hash no password matches, made with the same cost as users' hashes."""
    return _hasher.hash(secrets.token_urlsafe(32))


def _password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(registry: Registry, username: str, password: str) -> Principal:
    """Check a username and password; the error does not say which of the two was wrong.

    An unknown username costs the same argon2 check as a known one (against a dummy hash), so
    the time an answer takes does not tell which usernames exist either.
    """
    with registry.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        stored_hash = user.password_hash if user is not None else _unknown_user_hash()
        if _password_matches(stored_hash, password) and user is not None:
            return Principal(user.username, user.is_admin)
    raise AuthenticationFailed("Wrong username or password.")


def issue_token(
    registry: Registry,
    username: str,
    kind: str,
    name: str | None = None,
    *,
    captures_for: str | None = None,
    days: float | None = None,
) -> IssuedToken:
    """A new secret for `username`: a browser session (expires), an API token (does not, unless
    `days`), or a board token that may only add captures to dataset `captures_for`."""
    if kind not in ("session", "api", "board"):
        raise InvalidInput(f"Unknown token kind {kind!r}; use 'session', 'api' or 'board'.")
    if (kind == "board") != (captures_for is not None):
        raise InvalidInput("A board token needs the dataset it may add captures to, and only it.")
    if days is not None and days <= 0:
        raise InvalidInput(f"days must be positive (got {days}).")
    if captures_for is not None:
        require_dataset(registry, captures_for)
    token = secrets.token_urlsafe(32)
    if kind == "session":
        expires: datetime | None = utcnow() + timedelta(hours=registry.settings.session_hours)
    else:
        expires = utcnow() + timedelta(days=days) if days is not None else None
    with registry.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"No user named {username!r}.")
        session.add(
            AuthToken(
                token_hash=_token_hash(token),
                user_id=user.id,
                kind=kind,
                name=name,
                expires_at=expires,
                scope_dataset_id=captures_for,
            )
        )
        if kind != "session":
            details = {"captures_for": captures_for} if captures_for else None
            record_audit(session, username, "create", "token", name or kind, details)
    return IssuedToken(token, kind, expires.isoformat() if expires else None)


def resolve_token(registry: Registry, token: str) -> Principal:
    """The user a session or API token belongs to."""
    with registry.sessions() as session:
        # Columns, not entities: every request asks this, and loading ORM objects costs more.
        row = session.execute(
            select(User.username, User.is_admin, AuthToken.scope_dataset_id, AuthToken.expires_at)
            .join(User, AuthToken.user_id == User.id)
            .where(AuthToken.token_hash == _token_hash(token))
        ).first()
    if row is None:
        raise AuthenticationFailed("The token is not valid; log in again or create a new one.")
    username, is_admin, scope, expires_at = row
    if expires_at is not None and expires_at < utcnow():
        raise AuthenticationFailed("The session has expired; log in again.")
    return Principal(username, is_admin, scope)


def revoke_token(registry: Registry, token: str) -> None:
    with registry.sessions.begin() as session:
        session.execute(delete(AuthToken).where(AuthToken.token_hash == _token_hash(token)))
