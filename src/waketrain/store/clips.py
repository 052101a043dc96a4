"""The clip store: add, list, relabel, soft-delete and restore recordings."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waketrain.audio.decode import AudioRejected, decode_upload, encode_clip
from waketrain.store.db import MAX_SQL_INTEGER
from waketrain.store.errors import Conflict, InvalidInput, NotFound
from waketrain.store.events import record_audit, record_event
from waketrain.store.files import atomic_write_bytes
from waketrain.store.health import require_dataset
from waketrain.store.models import Clip, utcnow
from waketrain.store.projections import write_projections
from waketrain.store.registry import Registry

Label = Literal["positive", "negative", "noise"]
# What an operator may say a clip came from; "capture" (a board's recording) is the captures
# review's to give, never a client's to claim.
OperatorSource = Literal["upload", "record", "import", "synthetic"]
Source = OperatorSource | Literal["capture"]
AlsoInTransaction = Callable[[Session, str], None]
UPLOAD_KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{8,128}")
SortKey = Literal["created_at", "duration_seconds", "speaker", "quality_score", "label"]


class ClipMetadata(BaseModel):
    """What the operator says about a clip when adding it."""

    model_config = ConfigDict(extra="forbid")

    label: Label
    speaker: str | None = Field(default=None, max_length=128)
    notes: str | None = Field(default=None, max_length=2000)
    source: OperatorSource = "upload"

    @field_validator("speaker", "notes")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class ClipUpdate(BaseModel):
    """A review edit; only the fields that are set change."""

    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    speaker: str | None = Field(default=None, max_length=128)
    notes: str | None = Field(default=None, max_length=2000)


class ClipRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    dataset_id: str
    label: str
    speaker: str | None
    source: str
    notes: str | None
    original_filename: str | None
    original_format: str
    original_sample_rate: int
    original_channels: int
    duration_seconds: float
    sha256: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    analyzed_at: datetime | None
    quality_score: int | None
    quality_reasons: list[str] | None
    peak_dbfs: float | None
    rms_dbfs: float | None
    clipping_ratio: float | None
    snr_db: float | None
    speech_seconds: float | None
    speech_start_seconds: float | None
    speech_end_seconds: float | None
    deleted_at: datetime | None
    deleted_by: str | None


class ClipQuery(BaseModel):
    label: Label | None = None
    speaker: str | None = None
    deleted: Literal["exclude", "include", "only"] = "exclude"
    sort: SortKey = "created_at"
    order: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_SQL_INTEGER)


class ClipPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ClipRecord]


@dataclass
class ImportReport:
    imported: list[ClipRecord] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    already_there: list[ClipRecord] = field(default_factory=list)  # imported by an earlier run


def safe_filename(name: str | None) -> str | None:
    """The last path component only: an uploaded name is a label, never a path."""
    if not name:
        return None
    base = PureWindowsPath(PurePosixPath(name).name).name.strip()
    return base[:255] if base not in ("", ".", "..") else None


def _validate_clip_id(clip_id: str) -> str:
    try:
        return str(uuid.UUID(clip_id))
    except ValueError:
        raise NotFound(f"No clip {clip_id!r}: clip ids are UUIDs.") from None


def _store_clip(
    registry: Registry,
    dataset_id: str,
    data: bytes,
    metadata: ClipMetadata,
    filename: str | None,
    actor: str,
    also: AlsoInTransaction | None = None,
    source: Source | None = None,
    upload_key: str | None = None,
) -> ClipRecord:
    """Decode, write the canonical WAV atomically, then commit the row, event and audit."""
    decoded = decode_upload(data, registry.clip_limits)
    clip_id = str(uuid.uuid4())
    path = registry.layout.clip_path(dataset_id, clip_id)
    atomic_write_bytes(path, encode_clip(decoded.samples))
    clip = Clip(
        id=clip_id,
        dataset_id=dataset_id,
        label=metadata.label,
        speaker=metadata.speaker,
        source=source or metadata.source,
        notes=metadata.notes,
        original_filename=safe_filename(filename),
        original_format=decoded.original_format,
        original_sample_rate=decoded.original_sample_rate,
        original_channels=decoded.original_channels,
        duration_seconds=decoded.duration_seconds,
        sha256=hashlib.sha256(data).hexdigest(),
        created_by=actor,
        upload_key=upload_key,
    )
    try:
        with registry.sessions.begin() as session:
            session.add(clip)
            record_event(
                session,
                "clip.added",
                {"clip_id": clip_id, "label": metadata.label, "actor": actor},
                dataset_id=dataset_id,
            )
            record_audit(session, actor, "upload", "clip", clip_id, {"dataset_id": dataset_id})
            if also is not None:
                also(session, clip_id)
    except BaseException:
        path.unlink(missing_ok=True)  # no row, no file
        raise
    return ClipRecord.model_validate(clip)


def add_clip(
    registry: Registry,
    dataset_id: str,
    data: bytes,
    metadata: ClipMetadata,
    filename: str | None,
    actor: str,
    also: AlsoInTransaction | None = None,
    source: Source | None = None,
) -> ClipRecord:
    """Ingest one recording; quality metrics follow later (see `analysis`).

    `also(session, clip_id)` runs in the clip's transaction: its changes land with the clip,
    and if it raises, neither they nor the clip do. `source` overrides the metadata's (the
    captures review gives "capture").
    """
    require_dataset(registry, dataset_id)
    record = _store_clip(registry, dataset_id, data, metadata, filename, actor, also, source)
    write_projections(registry, dataset_id)
    return record


def add_clip_once(
    registry: Registry,
    dataset_id: str,
    data: bytes,
    metadata: ClipMetadata,
    filename: str | None,
    actor: str,
    upload_key: str,
) -> tuple[ClipRecord, bool]:
    """`add_clip` under the client's key: the same upload sent again (an answer lost to a
    crash or a dropped connection) is the clip stored the first time, not a second one.

    Returns (the clip, whether it was stored now). The key with other audio is refused.
    """
    if not UPLOAD_KEY_PATTERN.fullmatch(upload_key):
        raise InvalidInput(
            "Idempotency-Key must be 8 to 128 letters, digits or . _ : - (a UUID is ideal)."
        )
    require_dataset(registry, dataset_id)
    record, stored = _store_once(registry, dataset_id, data, metadata, filename, actor,
                                 f"upload:{upload_key}")  # fmt: skip
    if stored:
        write_projections(registry, dataset_id)
    return record, stored


def _store_once(
    registry: Registry,
    dataset_id: str,
    data: bytes,
    metadata: ClipMetadata,
    filename: str | None,
    actor: str,
    key: str,
) -> tuple[ClipRecord, bool]:
    first = _clip_with_key(registry, key)
    if first is None:
        try:
            record = _store_clip(registry, dataset_id, data, metadata, filename, actor,
                                 upload_key=key)  # fmt: skip
            return record, True
        except IntegrityError:
            first = _clip_with_key(registry, key)  # the same upload, at the same moment
            if first is None:
                raise
    if first.sha256 != hashlib.sha256(data).hexdigest() or first.dataset_id != dataset_id:
        raise Conflict(
            f"Idempotency-Key {key.split(':', 1)[1]!r} was already used for another recording "
            f"({first.original_filename or first.id} in {first.dataset_id}); send a new key "
            "with each new file."
        )
    return first, False


def _clip_with_key(registry: Registry, upload_key: str) -> ClipRecord | None:
    with registry.sessions() as session:
        clip = session.scalar(select(Clip).where(Clip.upload_key == upload_key))
        return ClipRecord.model_validate(clip) if clip is not None else None


def import_files(
    registry: Registry,
    files: Iterable[Path],
    dataset_id: str,
    metadata: ClipMetadata,
    actor: str,
    root: Path | None = None,
) -> ImportReport:
    """Add each audio file; a refused one is reported (by its path under `root`), not fatal.

    The projections are rewritten once at the end, not per clip: an import of n clips
    costs n clip writes, not n rewrites of files that list every clip.
    """
    require_dataset(registry, dataset_id)
    report = ImportReport()
    try:
        for path in files:
            name = str(path.relative_to(root)) if root else path.name
            try:
                data = path.read_bytes()
            except OSError as exc:  # vanished, unreadable, a folder: this file only
                report.rejected.append((name, f"could not be read: {exc.strerror or exc}"))
                continue
            # Keyed by dataset, label and content: a run again after an interruption adds
            # only the rest (the same audio under another label is still the operator's call).
            key = f"import:{dataset_id}:{metadata.label}:{hashlib.sha256(data).hexdigest()}"
            try:
                record, stored = _store_once(registry, dataset_id, data, metadata, path.name,
                                             actor, key)  # fmt: skip
            except AudioRejected as exc:
                report.rejected.append((name, str(exc)))
                continue
            (report.imported if stored else report.already_there).append(record)
    finally:  # also when interrupted: the clips already stored are in the projections
        write_projections(registry, dataset_id)
    return report


def import_directory(
    registry: Registry,
    folder: Path,
    dataset_id: str,
    metadata: ClipMetadata,
    actor: str,
) -> ImportReport:
    """Add every audio file under `folder`; files that are refused are reported, not fatal."""
    require_dataset(registry, dataset_id)
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return import_files(registry, files, dataset_id, metadata, actor, root=folder)


def list_clips(registry: Registry, dataset_id: str, query: ClipQuery) -> ClipPage:
    require_dataset(registry, dataset_id)
    condition = Clip.dataset_id == dataset_id
    if query.label is not None:
        condition &= Clip.label == query.label
    if query.speaker is not None:
        condition &= Clip.speaker == query.speaker
    if query.deleted == "exclude":
        condition &= Clip.deleted_at.is_(None)
    elif query.deleted == "only":
        condition &= Clip.deleted_at.is_not(None)
    column = getattr(Clip, query.sort)
    ordering = column.asc() if query.order == "asc" else column.desc()
    # Ties (and NULL speakers or pending scores) fall back to a stable order.
    statement = (
        select(Clip)
        .where(condition)
        .order_by(ordering.nulls_last(), Clip.created_at.desc(), Clip.id)
        .limit(query.limit)
        .offset(query.offset)
    )
    with registry.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Clip).where(condition)) or 0
        items = [ClipRecord.model_validate(clip) for clip in session.scalars(statement)]
    return ClipPage(total=total, limit=query.limit, offset=query.offset, items=items)


def get_clip(registry: Registry, clip_id: str) -> ClipRecord:
    with registry.sessions() as session:
        clip = session.get(Clip, _validate_clip_id(clip_id))
        if clip is None:
            raise NotFound(f"No clip {clip_id}.")
        return ClipRecord.model_validate(clip)


def clip_audio_path(registry: Registry, clip_id: str) -> Path:
    """The canonical WAV of a clip (deleted clips stay playable for review)."""
    clip = get_clip(registry, clip_id)
    return registry.layout.clip_path(clip.dataset_id, clip.id)


def _change_clip(
    registry: Registry, clip_id: str, actor: str, action: str, changes: dict[str, object]
) -> ClipRecord:
    """Apply `changes` to one clip with its event and audit row, then refresh the projections."""
    with registry.sessions.begin() as session:
        clip = session.get(Clip, _validate_clip_id(clip_id), with_for_update=True)
        if clip is None:
            raise NotFound(f"No clip {clip_id}.")
        before = {key: getattr(clip, key) for key in changes}
        for key, value in changes.items():
            setattr(clip, key, value)
        clip.updated_at = utcnow()
        event_type = {"delete": "clip.deleted", "restore": "clip.restored"}.get(
            action, "clip.updated"
        )
        detail = {
            key: {"from": _jsonable(before[key]), "to": _jsonable(value)}
            for key, value in changes.items()
        }
        record_event(
            session,
            event_type,
            {"clip_id": clip.id, "actor": actor, "changes": detail},
            dataset_id=clip.dataset_id,
        )
        record_audit(session, actor, action, "clip", clip.id, detail)
        record = ClipRecord.model_validate(clip)
    write_projections(registry, record.dataset_id)
    return record


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def update_clip(registry: Registry, clip_id: str, update: ClipUpdate, actor: str) -> ClipRecord:
    """Relabel a clip or change its speaker or notes."""
    changes = {key: getattr(update, key) for key in update.model_fields_set}
    if not changes:
        raise InvalidInput("Nothing to change: send label, speaker and/or notes.")
    if "label" in changes and changes["label"] is None:
        raise InvalidInput("label cannot be empty; use positive, negative or noise.")
    for key in ("speaker", "notes"):
        if isinstance(changes.get(key), str):
            changes[key] = str(changes[key]).strip() or None
    action = "relabel" if "label" in changes else "update"
    return _change_clip(registry, clip_id, actor, action, changes)


def delete_clip(registry: Registry, clip_id: str, actor: str) -> ClipRecord:
    """Soft delete: the file and row stay, training skips it, restore brings it back."""
    current = get_clip(registry, clip_id)
    if current.deleted_at is not None:
        return current
    return _change_clip(
        registry, clip_id, actor, "delete", {"deleted_at": utcnow(), "deleted_by": actor}
    )


def restore_clip(registry: Registry, clip_id: str, actor: str) -> ClipRecord:
    current = get_clip(registry, clip_id)
    if current.deleted_at is None:
        return current
    return _change_clip(
        registry, clip_id, actor, "restore", {"deleted_at": None, "deleted_by": None}
    )
