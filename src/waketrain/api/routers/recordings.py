"""One recording: metadata, audio for the player, review edits, soft delete and restore."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from waketrain.api.deps import current_principal, get_registry
from waketrain.store import clips
from waketrain.store.accounts import Principal
from waketrain.store.clips import ClipRecord, ClipUpdate
from waketrain.store.registry import Registry

router = APIRouter(
    prefix="/recordings", tags=["recordings"], dependencies=[Depends(current_principal)]
)
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


@router.get("/{clip_id}", response_model=ClipRecord)
def show_recording(clip_id: str, registry: RegistryDep) -> ClipRecord:
    return clips.get_clip(registry, clip_id)


@router.get("/{clip_id}/audio", response_class=FileResponse)
def recording_audio(clip_id: str, registry: RegistryDep) -> FileResponse:
    """The canonical WAV; honours HTTP Range requests so the player can seek."""
    return FileResponse(
        clips.clip_audio_path(registry, clip_id),
        media_type="audio/wav",
        filename=f"{clip_id}.wav",
        content_disposition_type="inline",
    )


@router.patch("/{clip_id}", response_model=ClipRecord)
def edit_recording(
    clip_id: str, update: ClipUpdate, registry: RegistryDep, principal: PrincipalDep
) -> ClipRecord:
    """Relabel, or change speaker or notes."""
    return clips.update_clip(registry, clip_id, update, principal.username)


@router.delete("/{clip_id}", response_model=ClipRecord)
def delete_recording(clip_id: str, registry: RegistryDep, principal: PrincipalDep) -> ClipRecord:
    """Soft delete: training skips the clip; restore brings it back."""
    return clips.delete_clip(registry, clip_id, principal.username)


@router.post("/{clip_id}/restore", response_model=ClipRecord)
def restore_recording(clip_id: str, registry: RegistryDep, principal: PrincipalDep) -> ClipRecord:
    return clips.restore_clip(registry, clip_id, principal.username)
