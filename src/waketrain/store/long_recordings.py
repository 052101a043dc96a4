"""Long recordings split into phrase-sized clips, which the operator checks before they land.

One recording of someone saying the phrase again and again (or of a room) is longer than a
clip may be. It is kept in scratch/ with the phrases the VAD proposes; the operator listens,
adjusts or drops pieces, and the accepted pieces become ordinary clips, each noting where in
the recording it came from.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.audio.decode import ClipLimits, decode_upload, encode_clip, read_clip
from waketrain.audio.segment import phrase_segments
from waketrain.store.clips import ClipMetadata, ClipRecord, add_clip, safe_filename
from waketrain.store.errors import InvalidInput, NotFound
from waketrain.store.files import atomic_write_bytes, atomic_write_json
from waketrain.store.health import require_dataset
from waketrain.store.registry import Registry

LONGEST_SECONDS = 600.0  # ten minutes: a long session of one speaker, still quick to scan


class Segment(BaseModel):
    start: float = Field(ge=0, description="Seconds into the recording.")
    end: float = Field(gt=0, description="Seconds into the recording.")

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if self.end <= self.start:
            raise ValueError(f"a segment must end after it starts ({self.start}-{self.end} s)")
        return self


class LongRecording(BaseModel):
    id: str
    dataset_id: str
    filename: str | None
    duration_seconds: float
    segments: list[Segment] = Field(description="The phrases the VAD heard, to check.")


class AcceptSegments(BaseModel):
    metadata: ClipMetadata = Field(description="Label, speaker and source of every new clip.")
    segments: list[Segment] = Field(min_length=1)


def propose_split(
    registry: Registry, dataset_id: str, data: bytes, filename: str | None
) -> LongRecording:
    """Keep the recording in scratch/ and propose its phrases."""
    require_dataset(registry, dataset_id)
    limits = registry.clip_limits
    decoded = decode_upload(data, ClipLimits(limits.max_bytes, limits.min_seconds, LONGEST_SECONDS))
    split_id = uuid.uuid4().hex
    segments = phrase_segments(decoded.samples, limits.max_seconds)
    record = LongRecording(
        id=split_id,
        dataset_id=dataset_id,
        filename=safe_filename(filename),
        duration_seconds=decoded.duration_seconds,
        segments=[Segment(start=s, end=e) for s, e in segments],
    )
    folder = registry.layout.scratch / "long-recordings"
    atomic_write_bytes(folder / f"{split_id}.wav", encode_clip(decoded.samples))
    atomic_write_json(folder / f"{split_id}.json", record.model_dump(mode="json"))
    return record


def long_recording(registry: Registry, split_id: str) -> LongRecording:
    path = _path(registry, split_id, ".json")
    return LongRecording.model_validate(json.loads(path.read_text()))


def long_recording_audio(registry: Registry, split_id: str) -> str:
    """The recording as a 16 kHz WAV, for the operator to listen to each piece."""
    return str(_path(registry, split_id, ".wav"))


def accept_segments(
    registry: Registry, split_id: str, accepted: AcceptSegments, actor: str
) -> list[ClipRecord]:
    """Each accepted piece as a clip of the recording's dataset, in order."""
    record = long_recording(registry, split_id)
    limits = registry.clip_limits
    for seg in accepted.segments:
        if seg.end > record.duration_seconds + 1e-3:
            raise InvalidInput(
                f"The segment {seg.start:.2f}-{seg.end:.2f} s ends after the recording "
                f"({record.duration_seconds:.2f} s)."
            )
        if not limits.min_seconds <= seg.end - seg.start <= limits.max_seconds:
            raise InvalidInput(
                f"The segment {seg.start:.2f}-{seg.end:.2f} s is {seg.end - seg.start:.2f} s "
                f"long; clips are {limits.min_seconds}-{limits.max_seconds} s."
            )
    samples = read_clip(long_recording_audio(registry, split_id))
    name = (record.filename or "recording").rsplit(".", 1)[0]
    clips = []
    for seg in sorted(accepted.segments, key=lambda s: s.start):
        piece = samples[round(seg.start * SAMPLE_RATE_HZ) : round(seg.end * SAMPLE_RATE_HZ)]
        where = f"{seg.start:.2f}-{seg.end:.2f} s"
        metadata = accepted.metadata.model_copy(
            update={"notes": _joined(accepted.metadata.notes, f"from {name} at {where}")}
        )
        data = encode_clip(piece)
        clips.append(
            add_clip(registry, record.dataset_id, data, metadata, f"{name}-{where}.wav", actor)
        )
    return clips


def _joined(notes: str | None, where: str) -> str:
    return f"{notes} ({where})" if notes else where


def _path(registry: Registry, split_id: str, suffix: str) -> Path:
    if not split_id.isalnum():
        raise InvalidInput(f"{split_id!r} is not a long recording's id.")
    path = registry.layout.scratch / "long-recordings" / f"{split_id}{suffix}"
    if not path.is_file():
        raise NotFound(
            f"No long recording {split_id!r} (unused ones are cleaned from scratch/): "
            "upload it again."
        )
    return path
