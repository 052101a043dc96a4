"""Refuse a request body from a caller without valid credentials before reading any of it."""

from __future__ import annotations

from collections.abc import Collection

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from waketrain.api.deps import principal_of
from waketrain.api.errors import domain_error_response
from waketrain.store.errors import AuthenticationFailed


class CredentialsBeforeBody:
    """ASGI middleware: 401 for a body sent without valid credentials, except to `open_paths`.

    FastAPI reads a form body before it runs the route's dependencies, so without this an
    anonymous client could make the server read and spool a whole upload before being refused.
    What the credentials may do (board tokens, CSRF) is still the route's dependencies' to say.
    """

    def __init__(self, app: ASGIApp, open_paths: Collection[str]) -> None:
        self.app = app
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.open_paths and has_body(scope):
            connection = HTTPConnection(scope)
            try:
                await run_in_threadpool(principal_of, connection)
            except AuthenticationFailed as exc:
                await domain_error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def has_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
