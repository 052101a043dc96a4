"""Request dependencies: the registry, the analyzer, and who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from waketrain.api.password_checks import PasswordChecks
from waketrain.api.rate_limit import RateLimiter
from waketrain.store.accounts import Principal, authenticate, resolve_token
from waketrain.store.analysis import QualityAnalyzer
from waketrain.store.errors import AuthenticationFailed, Forbidden, ServiceBusy
from waketrain.store.registry import Registry

SESSION_COOKIE = "waketrain_session"
# A browser sends a cookie with any cross-site form, but a custom header only from our own
# pages (cross-origin scripts would need CORS, which the API never grants).
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "waketrain"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def get_analyzer(request: Request) -> QualityAnalyzer:
    analyzer: QualityAnalyzer = request.app.state.analyzer
    return analyzer


def bearer_token(connection: HTTPConnection) -> str | None:
    scheme, token = get_authorization_scheme_param(connection.headers.get("Authorization"))
    return token if scheme.lower() == "bearer" and token else None


def credentials_of(connection: HTTPConnection) -> str | None:
    """A bearer token from the Authorization header, else the browser's session cookie."""
    return bearer_token(connection) or connection.cookies.get(SESSION_COOKIE)


def principal_of(connection: HTTPConnection) -> Principal:
    """Whom the request's credentials belong to, whatever they may do; AuthenticationFailed
    without valid ones."""
    token = credentials_of(connection)
    if not token:
        raise AuthenticationFailed(
            "Authentication required: log in (POST /auth/login) or send "
            "'Authorization: Bearer <token>' (POST /auth/token creates one)."
        )
    return resolve_token(connection.app.state.registry, token)


def authenticate_connection(
    connection: HTTPConnection, captures_for: str | None = None
) -> Principal:
    """Who is asking. A board token passes only where it adds captures to its own dataset
    (`captures_for`): everywhere else it is refused."""
    principal = principal_of(connection)
    scope = principal.captures_for
    if scope is not None and scope != captures_for:
        raise Forbidden(
            f"This is a board token: it may only add captures to dataset {scope!r} "
            f"(POST /datasets/{scope}/captures)."
        )
    return principal


def current_principal(request: Request) -> Principal:
    return _checked_principal(request, authenticate_connection(request))


def capture_uploader(request: Request, dataset_id: str) -> Principal:
    """A user, or a board token scoped to this dataset."""
    return _checked_principal(request, authenticate_connection(request, captures_for=dataset_id))


def _checked_principal(request: Request, principal: Principal) -> Principal:
    cookie_session = bearer_token(request) is None
    changes_state = request.method in UNSAFE_METHODS
    if cookie_session and changes_state and request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        raise Forbidden(
            f"A browser session may change things only from waketrain's own pages: send "
            f"'{CSRF_HEADER}: {CSRF_VALUE}' (the web UI does), or use a bearer token."
        )
    request.state.principal = principal
    return principal


def client_address(request: HTTPConnection) -> str:
    """The socket peer, or the client a trusted proxy names (see WAKETRAIN_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


async def check_password(
    request: Request, registry: Registry, username: str, password: str
) -> Principal:
    """authenticate(), within the address's budget of failures and the server's of checks.

    The failure is taken from the budget before the check (so that a concurrent burst cannot
    pass it together) and given back when the password is right. There is no per-user lockout:
    it would let anyone lock the admin out from anywhere. An address over its budget is refused
    only until the window frees one attempt (see RateLimiter), then the right password works.
    """
    limiter: RateLimiter = request.app.state.login_limiter
    checks: PasswordChecks = request.app.state.password_checks
    address = client_address(request)
    limiter.take(address)
    try:
        principal = await checks.run(authenticate, registry, username, password)
    except ServiceBusy:
        limiter.give_back(address)  # never checked, so not a failure
        raise
    limiter.give_back(address)  # the right password is not a failure
    return principal


def upload_budget(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> None:
    """Spend one of the user's uploads for this minute, or refuse with 429."""
    limiter: RateLimiter = request.app.state.upload_limiter
    limiter.take(principal.username)
