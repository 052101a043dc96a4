"""Training jobs: submit, watch, cancel, download, bless."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from waketrain.api.deps import current_principal, get_registry
from waketrain.jobs import artifacts, queue
from waketrain.jobs.queue import JobRecord, JobStatus
from waketrain.jobs.tryout import TryResult, score_with_current_model
from waketrain.store.accounts import Principal
from waketrain.store.registry import Registry

router = APIRouter(tags=["jobs"], dependencies=[Depends(current_principal)])
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
LOG_POLL_SECONDS = 0.5


class TrainRequest(BaseModel):
    dataset_id: str
    config_overrides: dict[str, object] = Field(
        default_factory=dict,
        description='Dotted keys, e.g. {"epochs": 10, "augment.rir_probability": 0}.',
    )
    init_from: str | None = Field(default=None, description="Warm start from this job.")


class CurrentModel(BaseModel):
    job: JobRecord | None
    metadata_url: str | None


@router.post("/train", response_model=JobRecord, status_code=202)
def submit_training(
    request: TrainRequest, registry: RegistryDep, principal: PrincipalDep
) -> JobRecord:
    """Queue a training job and return at once; a too-small dataset is refused with the reason."""
    return queue.submit_job(
        registry,
        request.dataset_id,
        request.config_overrides,
        principal.username,
        request.init_from,
    )


@router.get("/jobs", response_model=list[JobRecord])
def list_jobs(
    registry: RegistryDep,
    dataset_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Annotated[
        list[JobStatus] | None,
        Query(description="Only jobs in these statuses (repeat), e.g. queued and running."),
    ] = None,
) -> list[JobRecord]:
    """Newest first."""
    return queue.list_jobs(registry, dataset_id, limit, status)


@router.get("/jobs/{job_id}", response_model=JobRecord)
def show_job(job_id: str, registry: RegistryDep) -> JobRecord:
    """Status, stage, progress, ETA, and metrics once done."""
    return queue.get_job(registry, job_id)


@router.get("/jobs/{job_id}/logs")
async def job_logs(
    job_id: str,
    registry: RegistryDep,
    follow: Annotated[bool, Query(description="Keep streaming until the job ends.")] = False,
) -> StreamingResponse:
    """The job's log; with follow=true, a streaming tail that ends when the job does."""
    await run_in_threadpool(queue.get_job, registry, job_id)

    async def tail() -> AsyncIterator[bytes]:
        offset = 0
        while True:
            data, ended = await run_in_threadpool(artifacts.read_log_from, registry, job_id, offset)
            if data:
                offset += len(data)
                yield data
            if ended or not follow:
                if ended and follow:  # what was written between the last read and the end
                    rest, _ = await run_in_threadpool(
                        artifacts.read_log_from, registry, job_id, offset
                    )
                    if rest:
                        yield rest
                return
            await asyncio.sleep(LOG_POLL_SECONDS)

    return StreamingResponse(tail(), media_type="text/plain")


@router.post("/jobs/{job_id}/cancel", response_model=JobRecord)
def cancel_job(job_id: str, registry: RegistryDep, principal: PrincipalDep) -> JobRecord:
    """Queued: cancelled now. Running: the worker stops at its next batch."""
    return queue.cancel_job(registry, job_id, principal.username)


@router.get("/jobs/{job_id}/artifacts.zip")
def download_export(job_id: str, registry: RegistryDep) -> Response:
    """The export folder with config and logs, zipped (offline bundle)."""
    return Response(
        artifacts.export_zip(registry, job_id),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="waketrain-{job_id}.zip"'},
    )


@router.get("/jobs/{job_id}/artifacts/{name}")
def download_artifact(job_id: str, name: str, registry: RegistryDep) -> FileResponse:
    path, media_type = artifacts.artifact_path(registry, job_id, name)
    return FileResponse(path, media_type=media_type, filename=name)


@router.post("/jobs/{job_id}/bless", response_model=JobRecord)
def bless_job(job_id: str, registry: RegistryDep, principal: PrincipalDep) -> JobRecord:
    """Make this job's model the current one (atomic swap of models/current)."""
    return queue.bless_job(registry, job_id, principal.username)


@router.get("/models/current", response_model=CurrentModel)
def current_model(registry: RegistryDep) -> CurrentModel:
    job_id = queue.current_job_id(registry)
    if job_id is None:
        return CurrentModel(job=None, metadata_url=None)
    return CurrentModel(
        job=queue.get_job(registry, job_id),
        metadata_url=f"/jobs/{job_id}/artifacts/metadata.json",
    )


@router.post("/models/current/score", response_model=TryResult)
async def try_current_model(
    registry: RegistryDep,
    file: Annotated[UploadFile, File(description="A recording: WAV, FLAC, OGG or MP3.")],
) -> TryResult:
    """Score a recording with the current model exactly as the detector streams it."""
    data = await file.read()
    return await run_in_threadpool(score_with_current_model, registry, data)
