"""Captures from the board: received once each, reviewed into clips, or discarded.

A capture is the audio around a detection or a near miss, with what the detector thought.
It waits as `unreviewed` (its WAV under datasets/<id>/captures/) until the operator says
what it was: a real wake joins the dataset as a positive clip, a false wake as a negative
one (both with source "capture", the capture's own WAV then deleted), anything else is
discarded and its audio deleted.
Unreviewed captures expire after `capture_retention_days`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waketrain.audio.decode import decode_upload, encode_clip
from waketrain.store.clips import ClipMetadata, add_clip
from waketrain.store.errors import Conflict, InvalidInput, NotFound, describe_validation_errors
from waketrain.store.events import record_audit, record_event
from waketrain.store.files import atomic_write_bytes
from waketrain.store.health import require_dataset
from waketrain.store.models import Capture, utcnow
from waketrain.store.projections import write_projections
from waketrain.store.registry import Registry

CaptureKind = Literal["wake", "near_miss"]
SidecarKind = Literal["wake", "near_miss", "room"]  # room audio goes to the negative bank
CaptureStatus = Literal["unreviewed", "reviewed", "discarded"]
Verdict = Literal["positive", "negative", "discard"]
CAPTURE_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_SCORES = 2000  # a few seconds of hops; more is not a capture


class CaptureSidecar(BaseModel):
    """The JSON the board writes beside each capture's WAV."""

    model_config = ConfigDict(extra="ignore")  # newer boards may say more

    capture_id: str = Field(pattern=CAPTURE_ID_PATTERN)
    kind: SidecarKind
    model_id: str = Field(min_length=1, max_length=128)
    threshold: float = Field(ge=0.0, le=1.0)
    peak_score: float = Field(ge=0.0, le=1.0)
    scores: list[float] = Field(max_length=MAX_SCORES)
    hop_seconds: float = Field(gt=0.0, le=5.0)
    captured_at: datetime
    board: str = Field(min_length=1, max_length=128)

    @field_validator("captured_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone (ISO 8601 with Z or +00:00)")
        return value


class CaptureRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    dataset_id: str
    status: CaptureStatus
    kind: CaptureKind
    model_id: str
    threshold: float
    peak_score: float
    scores: list[float]
    hop_seconds: float
    board: str
    captured_at: datetime
    received_at: datetime
    duration_seconds: float
    verdict: Literal["positive", "negative"] | None
    clip_id: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class CapturePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[CaptureRecord]


@dataclass(frozen=True)
class Received:
    capture: CaptureRecord
    created: bool  # False: this capture id was already here (the board retried)


def parse_sidecar(text: str) -> CaptureSidecar:
    try:
        return CaptureSidecar.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"The capture's metadata is not JSON ({exc.msg}).") from None
    except ValidationError as exc:
        raise InvalidInput(
            "The capture's metadata is not acceptable: "
            + describe_validation_errors(exc.errors(), "metadata")
            + ". Expected the board's sidecar: capture_id (32 hex), kind (wake|near_miss|room), "
            "model_id, threshold, peak_score, scores, hop_seconds, captured_at, board."
        ) from None


def _existing(registry: Registry, dataset_id: str, capture_id: str) -> Received | None:
    with registry.sessions() as session:
        capture = session.get(Capture, capture_id)
        if capture is None:
            return None
        if capture.dataset_id != dataset_id:
            raise Conflict(
                f"Capture {capture_id} was already received for dataset {capture.dataset_id!r}."
            )
        return Received(CaptureRecord.model_validate(capture), created=False)


def receive_capture(
    registry: Registry, dataset_id: str, data: bytes, sidecar: CaptureSidecar, actor: str
) -> Received:
    """Store one capture, once: a retried upload of the same capture id changes nothing."""
    require_dataset(registry, dataset_id)
    if sidecar.kind == "room":
        raise InvalidInput("Room audio is not for review: it goes to the negative bank.")
    already = _existing(registry, dataset_id, sidecar.capture_id)
    if already is not None:
        return already
    decoded = decode_upload(data, registry.clip_limits)
    path = registry.layout.capture_path(dataset_id, sidecar.capture_id)
    atomic_write_bytes(path, encode_clip(decoded.samples))
    capture = Capture(
        id=sidecar.capture_id,
        dataset_id=dataset_id,
        status="unreviewed",
        kind=sidecar.kind,
        model_id=sidecar.model_id,
        threshold=sidecar.threshold,
        peak_score=sidecar.peak_score,
        scores=sidecar.scores,
        hop_seconds=sidecar.hop_seconds,
        board=sidecar.board,
        captured_at=sidecar.captured_at,
        duration_seconds=decoded.duration_seconds,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    try:
        with registry.sessions.begin() as session:
            session.add(capture)
            record_event(
                session,
                "capture.received",
                {"capture_id": capture.id, "kind": capture.kind, "status": "unreviewed"},
                dataset_id=dataset_id,
            )
            record_audit(session, actor, "receive", "capture", capture.id, {"board": sidecar.board})
    except IntegrityError:
        # The same capture arrived twice at once: the other request stored it (and the file).
        raced = _existing(registry, dataset_id, sidecar.capture_id)
        if raced is None:
            path.unlink(missing_ok=True)
            raise
        return raced
    except BaseException:
        path.unlink(missing_ok=True)  # no row, no file: the board pushes it again
        raise
    write_projections(registry, dataset_id)
    return Received(CaptureRecord.model_validate(capture), created=True)


def list_captures(
    registry: Registry,
    dataset_id: str,
    status: CaptureStatus | Literal["all"] = "unreviewed",
    limit: int = 100,
    offset: int = 0,
) -> CapturePage:
    require_dataset(registry, dataset_id)
    where = [Capture.dataset_id == dataset_id]
    if status != "all":
        where.append(Capture.status == status)
    with registry.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Capture).where(*where)) or 0
        rows = session.scalars(
            select(Capture)
            .where(*where)
            .order_by(Capture.received_at.desc(), Capture.id)
            .limit(limit)
            .offset(offset)
        ).all()
    items = [CaptureRecord.model_validate(c) for c in rows]
    return CapturePage(total=total, limit=limit, offset=offset, items=items)


def _validate_capture_id(capture_id: str) -> str:
    if re.fullmatch(CAPTURE_ID_PATTERN, capture_id) is None:
        raise NotFound(f"No capture {capture_id!r}: capture ids are 32 hex digits.")
    return capture_id


def get_capture(registry: Registry, capture_id: str) -> CaptureRecord:
    with registry.sessions() as session:
        capture = session.get(Capture, _validate_capture_id(capture_id))
        if capture is None:
            raise NotFound(f"No capture {capture_id!r}.")
        return CaptureRecord.model_validate(capture)


def capture_audio_path(registry: Registry, capture_id: str) -> Path:
    """The capture's audio: its own WAV while unreviewed, then the clip it became."""
    capture = get_capture(registry, capture_id)
    path = registry.layout.capture_path(capture.dataset_id, capture.id)
    if capture.clip_id is not None:
        path = registry.layout.clip_path(capture.dataset_id, capture.clip_id)
    if not path.exists():
        raise NotFound(f"Capture {capture_id} has no audio any more (it was discarded).")
    return path


def review_capture(
    registry: Registry, capture_id: str, verdict: Verdict, actor: str
) -> CaptureRecord:
    """A real wake becomes a positive clip, a false wake a negative one; discard deletes it."""
    capture = get_capture(registry, capture_id)
    if capture.status != "unreviewed":
        raise Conflict(f"Capture {capture_id} was already {capture.status}; nothing to review.")
    path = registry.layout.capture_path(capture.dataset_id, capture.id)
    taken = Conflict(f"Capture {capture_id} was reviewed by someone else meanwhile.")

    def mark_reviewed(session: Session, clip_id: str | None) -> None:
        row = session.get(Capture, capture.id, with_for_update=True)
        if row is None or row.status != "unreviewed":
            raise taken
        row.status = "discarded" if verdict == "discard" else "reviewed"
        row.verdict = None if verdict == "discard" else verdict
        row.clip_id = clip_id
        row.reviewed_by, row.reviewed_at = actor, utcnow()
        record_event(
            session,
            "capture.reviewed",
            {"capture_id": capture.id, "status": row.status, "verdict": row.verdict},
            dataset_id=capture.dataset_id,
        )
        record_audit(session, actor, f"review:{verdict}", "capture", capture.id,
                     {"clip_id": clip_id})  # fmt: skip

    if verdict == "discard":
        with registry.sessions.begin() as session:
            mark_reviewed(session, None)
        write_projections(registry, capture.dataset_id)
    else:
        thought = "woke" if capture.kind == "wake" else "nearly woke"
        notes = (
            f"capture {capture.id} from model {capture.model_id} on {capture.board}: the "
            f"detector {thought} (peak {capture.peak_score:.3f}, threshold {capture.threshold:.3f})"
        )
        metadata = ClipMetadata(label=verdict, notes=notes)
        # One transaction: the clip and the verdict land together (a second reviewer's
        # Conflict leaves no extra clip). add_clip rewrites the projections.
        try:
            audio = path.read_bytes()
        except FileNotFoundError:  # a reviewer beside this one got there first
            raise taken from None
        add_clip(registry, capture.dataset_id, audio, metadata, path.name, actor,
                 also=mark_reviewed, source="capture")  # fmt: skip
    # Discarded: the operator said it holds nothing worth keeping; reviewed: the clip it
    # became holds the same audio.
    path.unlink(missing_ok=True)
    return get_capture(registry, capture.id)


def delete_captures(
    registry: Registry,
    dataset_id: str,
    status: Literal["unreviewed", "discarded"],
    actor: str,
    received_before: datetime | None = None,
) -> int:
    """Delete every capture of `status` (and its audio); reviewed ones live on as clips."""
    require_dataset(registry, dataset_id)
    where = [Capture.dataset_id == dataset_id, Capture.status == status]
    if received_before is not None:
        where.append(Capture.received_at < received_before)
    with registry.sessions.begin() as session:
        ids = list(session.scalars(select(Capture.id).where(*where)))
        if not ids:
            return 0
        session.execute(delete(Capture).where(Capture.id.in_(ids)))
        record_event(
            session,
            "capture.deleted",
            {"capture_ids": ids, "status": status, "count": len(ids)},
            dataset_id=dataset_id,
        )
        record_audit(session, actor, "delete", "capture", f"{len(ids)} {status}",
                     {"dataset_id": dataset_id, "capture_ids": ids})  # fmt: skip
    for capture_id in ids:  # rows first: a crash here leaves files, never rows without audio
        registry.layout.capture_path(dataset_id, capture_id).unlink(missing_ok=True)
    write_projections(registry, dataset_id)
    return len(ids)


def expire_captures(registry: Registry) -> int:
    """Delete unreviewed captures older than the retention period, in every dataset."""
    cutoff = utcnow() - timedelta(days=registry.settings.capture_retention_days)
    with registry.sessions() as session:
        datasets = set(
            session.scalars(
                select(Capture.dataset_id).where(
                    Capture.status == "unreviewed", Capture.received_at < cutoff
                )
            )
        )
    return sum(
        delete_captures(registry, d, "unreviewed", "retention", received_before=cutoff)
        for d in sorted(datasets)
    )
