"""Boards: the deploy targets, kept in the registry; their keys never leave it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from waketrain.api.deps import current_principal, get_registry
from waketrain.deploy.boards import (
    BoardCheck,
    BoardFields,
    BoardRecord,
    HostKeyConfirmation,
    add_board,
    check_board,
    edit_board,
    get_board,
    list_boards,
    make_default,
    remove_board,
    trust_host_key,
)
from waketrain.store.accounts import Principal
from waketrain.store.registry import Registry

router = APIRouter(tags=["boards"], dependencies=[Depends(current_principal)])
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


@router.get("/boards", response_model=list[BoardRecord])
def boards(registry: RegistryDep) -> list[BoardRecord]:
    """Stored boards by name, then the DEPLOY_* board (id `env`) when it is set."""
    return list_boards(registry)


@router.post("/boards", response_model=BoardRecord, status_code=201)
def add(fields: BoardFields, registry: RegistryDep, principal: PrincipalDep) -> BoardRecord:
    """Add a board: name, host and user, with private_key or generate_key; the rest defaults
    to the DEPLOY_* settings. Then test it to see the host key to trust."""
    return add_board(registry, fields, principal.username)


@router.get("/boards/{board_id}", response_model=BoardRecord)
def board(board_id: str, registry: RegistryDep) -> BoardRecord:
    return get_board(registry, board_id)


@router.patch("/boards/{board_id}", response_model=BoardRecord)
def edit(
    board_id: str, fields: BoardFields, registry: RegistryDep, principal: PrincipalDep
) -> BoardRecord:
    """Change the fields given; a new host or port must have its host key trusted again."""
    return edit_board(registry, board_id, fields, principal.username)


@router.delete("/boards/{board_id}", status_code=204)
def remove(board_id: str, registry: RegistryDep, principal: PrincipalDep) -> Response:
    """409 while a deployment to it is under way."""
    remove_board(registry, board_id, principal.username)
    return Response(status_code=204)


@router.post("/boards/{board_id}/default", response_model=BoardRecord)
def default(board_id: str, registry: RegistryDep, principal: PrincipalDep) -> BoardRecord:
    """Deploys go here unless another board is named."""
    return make_default(registry, board_id, principal.username)


@router.post("/boards/{board_id}/test", response_model=BoardCheck)
def test(board_id: str, registry: RegistryDep) -> BoardCheck:
    """Reach the board: the host key it offers against the trusted one, then log in and
    check its folder. The outcome is in the body (200), whatever it is."""
    return check_board(registry, board_id)


@router.post("/boards/{board_id}/host-key", response_model=BoardRecord)
def trust(
    board_id: str,
    confirmation: HostKeyConfirmation,
    registry: RegistryDep,
    principal: PrincipalDep,
) -> BoardRecord:
    """Trust the host key the board offers, if its fingerprint is the one confirmed (409
    when the board now offers another)."""
    return trust_host_key(registry, board_id, confirmation.fingerprint, principal.username)
