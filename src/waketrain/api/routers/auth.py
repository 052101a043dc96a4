"""Login for the browser (session cookie) and bearer tokens for scripts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from waketrain.api.deps import (
    SESSION_COOKIE,
    check_password,
    credentials_of,
    current_principal,
    get_registry,
)
from waketrain.store.accounts import Principal, issue_token, revoke_token
from waketrain.store.registry import Registry

router = APIRouter(prefix="/auth", tags=["auth"])
# The doors that take a body without credentials: they check a password instead.
PASSWORD_PATHS = frozenset({"/auth/login", "/auth/token"})


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenRequest(Credentials):
    name: str | None = Field(default=None, max_length=128, description="Label for the token.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    username: str
    is_admin: bool


@router.post("/login", response_model=Me)
async def login(
    credentials: Credentials,
    request: Request,
    response: Response,
    registry: Annotated[Registry, Depends(get_registry)],
) -> Me:
    """Check the password and set the session cookie."""
    principal = await check_password(request, registry, credentials.username, credentials.password)
    issued = await run_in_threadpool(issue_token, registry, principal.username, "session")
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(registry.settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=registry.settings.cookie_secure,
    )
    return Me(username=principal.username, is_admin=principal.is_admin)


@router.post("/logout", status_code=204, dependencies=[Depends(current_principal)])
async def logout(
    request: Request, response: Response, registry: Annotated[Registry, Depends(get_registry)]
) -> None:
    """Revoke the session (or token) this request was made with."""
    token = credentials_of(request)
    if token:
        await run_in_threadpool(revoke_token, registry, token)
    response.delete_cookie(SESSION_COOKIE)


@router.post("/token", response_model=TokenResponse)
async def create_token(
    request_body: TokenRequest,
    request: Request,
    registry: Annotated[Registry, Depends(get_registry)],
) -> TokenResponse:
    """Exchange a username and password for a bearer token (for scripts and the CLI)."""
    principal = await check_password(
        request, registry, request_body.username, request_body.password
    )
    issued = await run_in_threadpool(
        issue_token, registry, principal.username, "api", request_body.name
    )
    return TokenResponse(access_token=issued.token)


@router.get("/me", response_model=Me)
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    return Me(username=principal.username, is_admin=principal.is_admin)
