"""Request dependencies: the registry, the analyzer, and who is asking."""

from __future__ import annotations

from fastapi import Request
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from waketrain.store.accounts import Principal, resolve_token
from waketrain.store.analysis import QualityAnalyzer
from waketrain.store.errors import AuthenticationFailed
from waketrain.store.registry import Registry

SESSION_COOKIE = "waketrain_session"


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def get_analyzer(request: Request) -> QualityAnalyzer:
    analyzer: QualityAnalyzer = request.app.state.analyzer
    return analyzer


def credentials_of(connection: HTTPConnection) -> str | None:
    """A bearer token from the Authorization header, else the browser's session cookie."""
    scheme, token = get_authorization_scheme_param(connection.headers.get("Authorization"))
    if scheme.lower() == "bearer" and token:
        return token
    return connection.cookies.get(SESSION_COOKIE)


def authenticate_connection(connection: HTTPConnection) -> Principal:
    token = credentials_of(connection)
    if not token:
        raise AuthenticationFailed(
            "Authentication required: log in (POST /auth/login) or send "
            "'Authorization: Bearer <token>' (POST /auth/token creates one)."
        )
    return resolve_token(connection.app.state.registry, token)


def current_principal(request: Request) -> Principal:
    principal = authenticate_connection(request)
    request.state.principal = principal
    return principal
