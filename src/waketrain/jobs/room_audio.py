"""What a board sends back: captures for review, and room audio for the negative bank.

Both arrive the same way, pushed to `POST /datasets/{id}/captures` with the board's token or
pulled over SSH, as a WAV with the board's JSON sidecar. Detections and near misses wait in
the review queue. Room audio (sidecar kind "room") is a stretch in which nothing came near a
wake, so it needs no review: it joins the bank's set `room-<board>` (kind room), the
television and voices of the room the model will live in. The bank is idempotent by content,
so a stretch sent twice (an acknowledgement lost) is added once.
"""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import soundfile as sf
from pydantic import BaseModel

from waketrain.runtime.capture import MAX_ROOM_SECONDS
from waketrain.store.captures import CaptureSidecar, Received, parse_sidecar, receive_capture
from waketrain.store.errors import InvalidInput
from waketrain.store.events import record_audit, record_event
from waketrain.store.health import require_dataset
from waketrain.store.registry import Registry
from waketrain.training.negative_bank import NegativeBank

ROOM_SET_PREFIX = "room-"


class RoomAudioRecord(BaseModel):
    capture_id: str
    kind: Literal["room"] = "room"
    board: str
    set_id: str  # the negative bank's set it joined
    seconds: float


@dataclass(frozen=True)
class ReceivedRoomAudio:
    record: RoomAudioRecord
    created: bool  # False: the bank already held this audio


def receive_from_board(
    registry: Registry, dataset_id: str, data: bytes, sidecar_text: str, actor: str
) -> Received | ReceivedRoomAudio:
    """One pair from the board: a capture into `dataset_id`'s review queue, or room audio."""
    sidecar = parse_sidecar(sidecar_text)
    if sidecar.kind == "room":
        return receive_room_audio(registry, dataset_id, data, sidecar, actor)
    return receive_capture(registry, dataset_id, data, sidecar, actor)


def room_set_id(board: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", board.lower()).strip("-_")
    return ROOM_SET_PREFIX + (slug[:58] or "board")


def receive_room_audio(
    registry: Registry, dataset_id: str, data: bytes, sidecar: CaptureSidecar, actor: str
) -> ReceivedRoomAudio:
    """Add a stretch of the board's room audio to the negative bank, once."""
    require_dataset(registry, dataset_id)  # the board's token is scoped to this dataset
    try:
        seconds = sf.info(io.BytesIO(data)).duration
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise InvalidInput(f"The room audio is not a readable WAV ({exc}).") from None
    if not 0 < seconds <= MAX_ROOM_SECONDS + 1:
        raise InvalidInput(
            f"Room audio of {seconds:.1f} s: a stretch is up to {MAX_ROOM_SECONDS:g} s."
        )
    set_id = room_set_id(sidecar.board)
    stamp = sidecar.captured_at.strftime("%Y%m%dT%H%M%SZ")
    registry.layout.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=registry.layout.scratch, prefix="room-") as folder:
        path = Path(folder) / f"{stamp}-{sidecar.capture_id}.wav"
        path.write_bytes(data)
        report = NegativeBank(registry.layout).add(
            [path], set_id, "room", names_relative_to=Path(folder)
        )
    if report.refused:
        raise InvalidInput(f"The room audio was refused: {report.refused[0]}.")
    created = bool(report.added)
    record = RoomAudioRecord(
        capture_id=sidecar.capture_id, board=sidecar.board, set_id=set_id, seconds=seconds
    )
    if created:
        with registry.sessions.begin() as session:
            record_event(session, "negatives.room_audio", record.model_dump())
            details = {"capture_id": sidecar.capture_id, "seconds": round(seconds, 2)}
            record_audit(session, actor, "add", "negative_set", set_id, details)
    return ReceivedRoomAudio(record, created)
