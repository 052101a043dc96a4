"""The negative bank: list its sets, add audio (uploaded, or a folder on the server), remove."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from waketrain.api.deps import current_principal, get_registry, upload_budget
from waketrain.jobs.bank_imports import BankImports, allowed_server_paths
from waketrain.store.accounts import Principal
from waketrain.store.errors import Forbidden, InvalidInput
from waketrain.store.registry import Registry
from waketrain.training.negative_bank import Kind, NegativeBank, default_set_id, validate_set_id

router = APIRouter(tags=["negatives"])
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def get_imports(request: Request) -> BankImports:
    imports: BankImports = request.app.state.bank_imports
    return imports


ImportsDep = Annotated[BankImports, Depends(get_imports)]


class SetView(BaseModel):
    id: str
    kind: str
    created: str
    hours: float
    files: int


class BankView(BaseModel):
    sets: list[SetView]
    hours: float
    imports: list[dict[str, Any]] = Field(description="Adds of this service run, newest last.")


class ServerImport(BaseModel):
    paths: list[str] = Field(min_length=1, description="Folders or files on the server.")
    set_id: str | None = Field(default=None, description="Default: the first path's name.")
    kind: Kind = "mixed"


@router.get("/negatives", response_model=BankView)
async def list_bank(registry: RegistryDep, imports: ImportsDep, _: PrincipalDep) -> BankView:
    sets = await run_in_threadpool(NegativeBank(registry.layout).sets)
    views = [SetView(id=s.id, kind=s.kind, created=s.created, hours=s.hours,
                     files=len(s.sources)) for s in sets]  # fmt: skip
    return BankView(
        sets=views, hours=sum(v.hours for v in views), imports=[j.view() for j in imports.imports()]
    )


@router.post("/negatives/imports", status_code=202)
async def import_from_server(
    body: ServerImport, registry: RegistryDep, imports: ImportsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Add folders or files under WAKETRAIN_NEGATIVES_IMPORT_DIRS; runs in the background."""
    if not principal.is_admin:
        raise Forbidden("Only an admin may add folders from the server's disk; upload instead.")
    paths = allowed_server_paths(body.paths, registry.settings.negatives_import_dirs)
    set_id = body.set_id or default_set_id(paths[0])
    return imports.submit(paths, set_id, body.kind, principal.username).view()


@router.post("/negatives/uploads", status_code=202, dependencies=[Depends(upload_budget)])
async def upload_to_bank(
    registry: RegistryDep,
    imports: ImportsDep,
    principal: PrincipalDep,
    files: Annotated[list[UploadFile], File(description="Audio files of any length.")],
    set_id: Annotated[str, Form(description="The set to add them to.")],
    kind: Annotated[Kind, Form()] = "mixed",
) -> dict[str, Any]:
    """Add uploaded recordings (television, talk, music, the room); runs in the background."""
    validate_set_id(set_id)
    folder = registry.layout.scratch / f"negatives-upload-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    for i, upload in enumerate(files):
        # Only the file's content matters: a plain, numbered name on our disk.
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.filename or "").name)[-80:]
        (folder / f"{i:04d}-{name or 'upload'}").write_bytes(await upload.read())
    if not files:
        raise InvalidInput("No files were uploaded.")
    return imports.submit([folder], set_id, kind, principal.username, uploaded=folder).view()


@router.delete("/negatives/{set_id}", response_model=SetView)
async def remove_set(set_id: str, registry: RegistryDep, _: PrincipalDep) -> SetView:
    removed = await run_in_threadpool(NegativeBank(registry.layout).remove, set_id)
    return SetView(id=removed.id, kind=removed.kind, created=removed.created,
                   hours=removed.hours, files=len(removed.sources))  # fmt: skip
