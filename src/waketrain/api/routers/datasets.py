"""Datasets and their recordings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from waketrain.api.deps import current_principal, get_analyzer, get_registry, upload_budget
from waketrain.store import clips, datasets, health
from waketrain.store.accounts import Principal
from waketrain.store.analysis import QualityAnalyzer
from waketrain.store.clips import ClipMetadata, ClipPage, ClipQuery, ClipRecord
from waketrain.store.datasets import DatasetCreate
from waketrain.store.errors import InvalidInput, describe_validation_errors
from waketrain.store.health import DatasetSummary
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
) -> ClipRecord:
    """Store one recording as 16 kHz mono PCM16; quality metrics are computed afterwards."""
    meta = _parse_metadata(metadata)
    data = await file.read()
    record = await run_in_threadpool(
        clips.add_clip, registry, dataset_id, data, meta, file.filename, principal.username
    )
    analyzer.notify()
    return record


@router.get("/datasets/{dataset_id}/recordings", response_model=ClipPage)
def list_recordings(
    dataset_id: str, registry: RegistryDep, query: Annotated[ClipQuery, Query()]
) -> ClipPage:
    """Sort by date, length, speaker, quality or label; filter by label, speaker, deleted."""
    return clips.list_clips(registry, dataset_id, query)
