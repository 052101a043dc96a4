"""Datasets and their recordings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from waketrain.api.deps import current_principal, get_analyzer, get_registry, upload_budget
from waketrain.store import checklist, clips, datasets, health, hygiene, long_recordings
from waketrain.store.accounts import Principal
from waketrain.store.analysis import QualityAnalyzer
from waketrain.store.checklist import Checklist
from waketrain.store.clips import ClipMetadata, ClipPage, ClipQuery, ClipRecord
from waketrain.store.datasets import DatasetCreate
from waketrain.store.errors import InvalidInput, describe_validation_errors
from waketrain.store.health import DatasetSummary
from waketrain.store.hygiene import Hygiene
from waketrain.store.long_recordings import LongRecording
from waketrain.store.registry import Registry

router = APIRouter(tags=["datasets"], dependencies=[Depends(current_principal)])
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


@router.get("/datasets", response_model=list[DatasetSummary])
def list_datasets(registry: RegistryDep) -> list[DatasetSummary]:
    return datasets.list_datasets(registry)


@router.post("/datasets", response_model=DatasetSummary, status_code=201)
def create_dataset(
    spec: DatasetCreate, registry: RegistryDep, principal: PrincipalDep
) -> DatasetSummary:
    return datasets.create_dataset(registry, spec, principal.username)


@router.get("/datasets/{dataset_id}", response_model=DatasetSummary)
def show_dataset(dataset_id: str, registry: RegistryDep) -> DatasetSummary:
    """Counts per label, minutes, balance, mean SNR and quality flags."""
    return health.dataset_summary(registry, dataset_id)


@router.get("/datasets/{dataset_id}/checklist", response_model=Checklist)
def dataset_checklist(dataset_id: str, registry: RegistryDep) -> Checklist:
    """What next: the steps from recording to a model on the board, each with its progress."""
    return checklist.checklist(registry, dataset_id)


@router.get("/datasets/{dataset_id}/duplicates", response_model=Hygiene)
def duplicates(dataset_id: str, registry: RegistryDep) -> Hygiene:
    """Clips with identical audio, grouped; groups under different labels first."""
    return hygiene.duplicate_groups(registry, dataset_id)


class KeepOne(BaseModel):
    sha256: str = Field(description="The group: its clips' audio hash.")
    keep: str = Field(description="The clip to keep; the group's others are deleted.")


@router.post("/datasets/{dataset_id}/duplicates/resolve", response_model=list[ClipRecord])
def resolve_duplicates(
    dataset_id: str, request: KeepOne, registry: RegistryDep, principal: PrincipalDep
) -> list[ClipRecord]:
    """Keep one clip of a group of identical ones; returns the clips deleted (restorable)."""
    return hygiene.keep_one(registry, dataset_id, request.sha256, request.keep, principal.username)


def _parse_metadata(raw: str) -> ClipMetadata:
    try:
        return ClipMetadata.model_validate_json(raw)
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors(), "metadata")
        raise InvalidInput(
            f"Invalid metadata ({problems}). Send JSON like "
            '{"label": "positive|negative|noise", "speaker": "...", "notes": "...", '
            '"source": "upload|record|import|synthetic"}.'
        ) from None


@router.post(
    "/datasets/{dataset_id}/recordings",
    response_model=ClipRecord,
    status_code=201,
    dependencies=[Depends(upload_budget)],
)
async def upload_recording(
    dataset_id: str,
    registry: RegistryDep,
    analyzer: Annotated[QualityAnalyzer, Depends(get_analyzer)],
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="Audio: WAV, FLAC, OGG or MP3 (by content).")],
    metadata: Annotated[
        str, Form(description='JSON: {"label": ..., "speaker", "notes", "source"}')
    ],
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="One per file (a UUID): sent again with the same file, the answer is "
            "the clip stored the first time (200), not a second clip.",
        ),
    ] = None,
) -> ClipRecord:
    """Store one recording as 16 kHz mono PCM16; quality metrics are computed afterwards."""
    meta = _parse_metadata(metadata)
    data = await file.read()
    if idempotency_key is None:
        record = await run_in_threadpool(
            clips.add_clip, registry, dataset_id, data, meta, file.filename, principal.username
        )
    else:
        record, stored = await run_in_threadpool(
            clips.add_clip_once, registry, dataset_id, data, meta, file.filename,
            principal.username, idempotency_key,
        )  # fmt: skip
        if not stored:
            response.status_code = 200
            return record
    analyzer.notify()
    return record


@router.post(
    "/datasets/{dataset_id}/long-recordings",
    response_model=LongRecording,
    status_code=201,
    dependencies=[Depends(upload_budget)],
)
async def upload_long_recording(
    dataset_id: str,
    registry: RegistryDep,
    file: Annotated[UploadFile, File(description="Audio of up to ten minutes, any format.")],
) -> LongRecording:
    """Keep a recording longer than a clip and propose its phrases (VAD) for review; nothing
    joins the dataset until the pieces are accepted."""
    data = await file.read()
    return await run_in_threadpool(
        long_recordings.propose_split, registry, dataset_id, data, file.filename
    )


@router.get("/long-recordings/{recording_id}", response_model=LongRecording)
def show_long_recording(recording_id: str, registry: RegistryDep) -> LongRecording:
    return long_recordings.long_recording(registry, recording_id)


@router.get("/long-recordings/{recording_id}/audio")
def long_recording_audio(recording_id: str, registry: RegistryDep) -> FileResponse:
    """The recording as 16 kHz WAV, to listen to each proposed piece."""
    path = long_recordings.long_recording_audio(registry, recording_id)
    return FileResponse(path, media_type="audio/wav")


@router.post(
    "/long-recordings/{recording_id}/clips", response_model=list[ClipRecord], status_code=201
)
def accept_long_recording(
    recording_id: str,
    accepted: long_recordings.AcceptSegments,
    registry: RegistryDep,
    analyzer: Annotated[QualityAnalyzer, Depends(get_analyzer)],
    principal: PrincipalDep,
) -> list[ClipRecord]:
    """The accepted (possibly adjusted) pieces become clips of the recording's dataset."""
    added = long_recordings.accept_segments(registry, recording_id, accepted, principal.username)
    analyzer.notify()
    return added


@router.get("/datasets/{dataset_id}/recordings", response_model=ClipPage)
def list_recordings(
    dataset_id: str, registry: RegistryDep, query: Annotated[ClipQuery, Query()]
) -> ClipPage:
    """Sort by date, length, speaker, quality or label; filter by label, speaker, deleted."""
    return clips.list_clips(registry, dataset_id, query)
