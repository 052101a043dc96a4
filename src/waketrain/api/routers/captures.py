"""Captures from the board: upload (board tokens too), the review queue, bulk delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from waketrain.api.deps import capture_uploader, current_principal, get_analyzer, get_registry
from waketrain.jobs.room_audio import ReceivedRoomAudio, RoomAudioRecord, receive_from_board
from waketrain.store import captures
from waketrain.store.accounts import Principal
from waketrain.store.analysis import QualityAnalyzer
from waketrain.store.captures import CapturePage, CaptureRecord, CaptureStatus, Verdict
from waketrain.store.registry import Registry

router = APIRouter(tags=["captures"])
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


class Review(BaseModel):
    verdict: Verdict


class BulkDelete(BaseModel):
    status: Literal["unreviewed", "discarded"]


class Deleted(BaseModel):
    deleted: int


@router.post(
    "/datasets/{dataset_id}/captures",
    response_model=CaptureRecord | RoomAudioRecord,
    status_code=201,
    responses={200: {"description": "Already received (the board retried): nothing changed."}},
)
async def upload_capture(
    dataset_id: str,
    registry: RegistryDep,
    principal: Annotated[Principal, Depends(capture_uploader)],
    response: Response,
    file: Annotated[UploadFile, File(description="The capture: 16 kHz mono WAV.")],
    metadata: Annotated[str, Form(description="The board's JSON sidecar for this capture.")],
) -> CaptureRecord | RoomAudioRecord:
    """Add one capture from the board, once: a repeated capture id answers 200, not 201.
    Room audio (sidecar kind "room") joins the negative bank instead of the review queue."""
    data = await file.read()
    received = await run_in_threadpool(
        receive_from_board, registry, dataset_id, data, metadata, principal.username
    )
    if not received.created:
        response.status_code = 200
    return received.record if isinstance(received, ReceivedRoomAudio) else received.capture


@router.get(
    "/datasets/{dataset_id}/captures",
    response_model=CapturePage,
    dependencies=[Depends(current_principal)],
)
def list_captures(
    dataset_id: str,
    registry: RegistryDep,
    status: CaptureStatus | Literal["all"] = "unreviewed",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> CapturePage:
    """The review queue (newest first); `status=all` for every capture."""
    return captures.list_captures(registry, dataset_id, status, limit, offset)


@router.post("/datasets/{dataset_id}/captures/delete", response_model=Deleted)
def delete_captures(
    dataset_id: str, request: BulkDelete, registry: RegistryDep, principal: PrincipalDep
) -> Deleted:
    """Delete every unreviewed (or discarded) capture of the dataset, audio included."""
    n = captures.delete_captures(registry, dataset_id, request.status, principal.username)
    return Deleted(deleted=n)


@router.get(
    "/captures/{capture_id}",
    response_model=CaptureRecord,
    dependencies=[Depends(current_principal)],
)
def show_capture(capture_id: str, registry: RegistryDep) -> CaptureRecord:
    return captures.get_capture(registry, capture_id)


@router.get(
    "/captures/{capture_id}/audio",
    response_class=FileResponse,
    dependencies=[Depends(current_principal)],
)
def capture_audio(capture_id: str, registry: RegistryDep) -> FileResponse:
    return FileResponse(captures.capture_audio_path(registry, capture_id), media_type="audio/wav")


@router.post("/captures/{capture_id}/review", response_model=CaptureRecord)
def review_capture(
    capture_id: str,
    review: Review,
    registry: RegistryDep,
    principal: PrincipalDep,
    analyzer: Annotated[QualityAnalyzer, Depends(get_analyzer)],
) -> CaptureRecord:
    """positive: a real wake, joins as a positive clip; negative: a false wake, joins as a
    negative clip; discard: deleted."""
    reviewed = captures.review_capture(registry, capture_id, review.verdict, principal.username)
    if reviewed.clip_id:
        analyzer.notify()  # measure the new clip's quality like any upload
    return reviewed
