"""Apply training to the board: start a deployment, watch it, list them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from waketrain.api.deps import current_principal, get_registry
from waketrain.deploy.bundle import bundle_for_download
from waketrain.deploy.service import (
    DeploymentRecord,
    DeploymentStatus,
    DeployTarget,
    cancel_deployment,
    describe_target,
    get_deployment,
    list_deployments,
    start_deployment,
)
from waketrain.store.accounts import Principal
from waketrain.store.registry import Registry

router = APIRouter(tags=["deploy"], dependencies=[Depends(current_principal)])
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


class DeployRequest(BaseModel):
    job_id: str | None = Field(default=None, description="Default: the current model's job.")
    artifact_path: str | None = Field(
        default=None,
        description="Instead of job_id: jobs/<job_id>/export, or transfers/<bundle>.tar.gz "
        "to ship an earlier bundle again.",
    )
    board_id: str | None = Field(default=None, description="Default: the default board.")


@router.get("/deploy/target", response_model=DeployTarget)
def deploy_target(registry: RegistryDep) -> DeployTarget:
    """Where a deploy goes by default (a stored board, else DEPLOY_*), or what is missing."""
    return describe_target(registry)


@router.post("/deploy", response_model=DeploymentRecord, status_code=202)
def deploy(
    request: DeployRequest, registry: RegistryDep, principal: PrincipalDep
) -> DeploymentRecord:
    """Queue shipping the job's model to the board; a worker runs it (like a training job).

    409 while another deployment to the same board is queued or running.
    """
    return start_deployment(
        registry,
        request.job_id,
        principal.username,
        request.artifact_path,
        board_id=request.board_id,
    )


@router.get("/jobs/{job_id}/deploy-bundle")
def download_deploy_bundle(job_id: str, registry: RegistryDep) -> FileResponse:
    """The tar.gz the board applies, for a USB stick (with its .sha256 beside it)."""
    bundle = bundle_for_download(registry, job_id)
    return FileResponse(bundle.path, media_type="application/gzip", filename=bundle.path.name)


@router.get("/jobs/{job_id}/deploy-bundle.sha256")
def download_deploy_bundle_checksum(job_id: str, registry: RegistryDep) -> FileResponse:
    bundle = bundle_for_download(registry, job_id)
    path = bundle.checksum_path
    return FileResponse(path, media_type="text/plain", filename=path.name)


@router.get("/deployments", response_model=list[DeploymentRecord])
def deployments(
    registry: RegistryDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: Annotated[
        list[DeploymentStatus] | None,
        Query(description="Only deployments in these statuses (repeat), e.g. pending."),
    ] = None,
) -> list[DeploymentRecord]:
    """Newest first."""
    return list_deployments(registry, limit, status)


@router.get("/deployments/{deployment_id}", response_model=DeploymentRecord)
def deployment(deployment_id: str, registry: RegistryDep) -> DeploymentRecord:
    """Status, the log so far, and the board's stdout/stderr once applied."""
    return get_deployment(registry, deployment_id)


@router.post("/deployments/{deployment_id}/cancel", response_model=DeploymentRecord)
def cancel(deployment_id: str, registry: RegistryDep, principal: PrincipalDep) -> DeploymentRecord:
    """A queued deployment stops at once; a running one before the board applies it.

    409 once the board is applying it (it finishes or rolls back on its own) or it ended.
    """
    return cancel_deployment(registry, deployment_id, principal.username)
