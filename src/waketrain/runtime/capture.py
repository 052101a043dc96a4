"""Captures on the board: each detection and each near miss saved for review (numpy + stdlib).

Off unless the detector is given a spool folder: the board then keeps the last few seconds
of audio and of smoothed scores, and saves about 2 s before each peak and 1 s after it as
`<capture_id>.wav` (16 kHz mono PCM16) with a `<capture_id>.json` sidecar. Each file is
written atomically, WAV first and sidecar last, so a sidecar marks a complete capture. The
spool has a size cap: the oldest captures go first, so the disk never fills. A near miss is
a local peak of the smoothed score at or above `near_miss_fraction` of the threshold but
below it; at most one per `near_miss_min_gap_seconds`, so a noisy room cannot flood the spool.

Room audio, when enabled (`room_every_seconds` > 0): every so often the recorder keeps a
stretch of `room_seconds` of what the microphone hears and spools it (kind "room") if nothing
in it, nor in the seconds after it, came near a wake: no detection and no score at the
near-miss level, so a wake the model missed is never sent back as negative audio. The
service adds these stretches to its negative bank: the television and voices of the room the
board lives in.
"""

from __future__ import annotations

import io
import json
import os
import stat
import uuid
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from waketrain.runtime.detection import HopScores
from waketrain.runtime.sources import SAMPLE_RATE_HZ
from waketrain.runtime.speech_embedding import PCM16_SCALE

DEFAULT_SPOOL_DIR = Path("/var/lib/waketrain/captures")  # where a board keeps it, when enabled
REJECTED_FOLDER = "rejected"  # pairs the service refused, with a `.reason` file beside them
TEMP_SUFFIX = ".tmp"
MAX_ROOM_SECONDS = 120.0  # 3.8 MB of WAV: well within one upload
ROOM_GUARD_SECONDS = 2.0  # a phrase cut off at a stretch's end fires within this


@dataclass(frozen=True)
class CaptureSettings:
    spool_dir: Path
    board: str  # hostname, or --board-name
    near_miss_fraction: float = 0.6
    near_miss_min_gap_seconds: float = 10.0
    max_spool_bytes: int = 50_000_000
    pre_seconds: float = 2.0  # audio kept before the peak
    post_seconds: float = 1.0  # and after it: a capture is written this long after its peak
    room_every_seconds: float = 0.0  # a stretch of room audio this often; 0: none
    room_seconds: float = 30.0  # how long each stretch is


@dataclass(frozen=True)
class SpooledCapture:
    """A complete pair in the spool (its sidecar exists)."""

    capture_id: str
    wav: Path
    sidecar: Path
    captured_at: str  # from the sidecar; "" when it cannot be read, which sorts it first
    size_bytes: int
    room_audio: bool = False  # a stretch of room audio, not a capture for review

    @property
    def rejected(self) -> bool:
        return self.wav.parent.name == REJECTED_FOLDER


def spooled_captures(spool_dir: Path) -> list[SpooledCapture]:
    """Complete pairs in the spool folder itself (not `rejected/`), oldest first."""
    return sorted(_pairs_in(spool_dir), key=lambda c: c.captured_at)


def _pairs_in(folder: Path) -> list[SpooledCapture]:
    pairs = []
    for sidecar in folder.glob("*.json"):
        wav = sidecar.with_suffix(".wav")
        try:
            size = wav.stat().st_size + sidecar.stat().st_size
            text = sidecar.read_text()
        except FileNotFoundError:  # half a pair, or taken away meanwhile (sent or evicted)
            continue
        try:
            fields = json.loads(text)
            captured_at, room_audio = str(fields["captured_at"]), fields.get("kind") == "room"
        except (ValueError, KeyError, TypeError, AttributeError):  # not the board's
            captured_at, room_audio = "", False  # the service will say why
        pairs.append(SpooledCapture(sidecar.stem, wav, sidecar, captured_at, size, room_audio))
    return pairs


def spool_bytes(spool_dir: Path) -> int:
    """Everything under the spool folder, rejected pairs and leftovers included."""
    total = 0
    for path in spool_dir.rglob("*"):
        try:
            status = path.stat()
        except FileNotFoundError:  # renamed, pulled or evicted between listing and stat
            continue
        if stat.S_ISREG(status.st_mode):
            total += status.st_size
    return total


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename: a reader sees all of it or nothing."""
    temp = path.with_name(f".{path.name}{TEMP_SUFFIX}")
    with temp.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE_HZ) -> bytes:
    """float32 in [-1, 1) -> a mono PCM16 WAV file's bytes."""
    pcm = np.clip(np.round(audio * PCM16_SCALE), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


class Spool:
    """The capture folder with its size cap; the recorder is its only writer."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)

    def remove_incomplete(self) -> list[Path]:
        """Temp files and half pairs a crash left behind (never sent: no sidecar, no capture)."""
        removed = []
        for folder in (self.directory, self.directory / REJECTED_FOLDER):
            for path in folder.glob(f".*{TEMP_SUFFIX}"):
                path.unlink(missing_ok=True)
                removed.append(path)
            for wav in folder.glob("*.wav"):
                if not wav.with_suffix(".json").exists():
                    wav.unlink(missing_ok=True)
                    removed.append(wav)
            for sidecar in folder.glob("*.json"):
                if not sidecar.with_suffix(".wav").exists():
                    sidecar.unlink(missing_ok=True)
                    removed.append(sidecar)
        return removed

    def make_room(self, size: int) -> list[str] | None:
        """Delete pairs until `size` more bytes fit: rejected ones first, then room audio
        (there is always more of it), then the oldest captures.

        The ids deleted, or None when `size` cannot fit even in an empty spool.
        """
        if size > self.max_bytes:
            return None
        used = spool_bytes(self.directory)
        if used + size <= self.max_bytes:
            return []
        pairs = _pairs_in(self.directory / REJECTED_FOLDER) + _pairs_in(self.directory)
        pairs.sort(key=lambda c: (not c.rejected, not c.room_audio, c.captured_at))
        deleted = []
        for pair in pairs:
            if used + size <= self.max_bytes:
                break
            pair.sidecar.unlink(missing_ok=True)  # incomplete first, so never pushed half gone
            pair.wav.unlink(missing_ok=True)
            pair.wav.with_suffix(".reason").unlink(missing_ok=True)
            used = spool_bytes(self.directory)
            deleted.append(pair.capture_id)
        return deleted if used + size <= self.max_bytes else None

    def add(self, capture_id: str, wav: bytes, sidecar: dict[str, object]) -> Path | None:
        """Write one pair, WAV first and sidecar last; None when it cannot fit under the cap."""
        text = json.dumps(sidecar).encode()
        if self.make_room(len(wav) + len(text)) is None:
            return None
        wav_path = self.directory / f"{capture_id}.wav"
        write_atomically(wav_path, wav)
        write_atomically(wav_path.with_suffix(".json"), text)
        _fsync_folder(self.directory)  # the renames themselves survive a power cut
        return wav_path


@dataclass(frozen=True)
class _Pending:
    kind: str  # "wake" | "near_miss" | "room"
    peak_sample: int  # stream position where the peak hop's window ends (room: its start)
    model_id: str
    threshold: float
    hop_seconds: float


@dataclass
class _RoomStretch:
    """Room audio being kept: spooled only if nothing in it came near a wake."""

    start: int  # stream position of its first sample
    audio: list[np.ndarray]
    peak: float = 0.0  # the highest smoothed score of a hop that ends inside it
    quiet: bool = True  # no detection, no score at the near-miss level (so far)


class CaptureRecorder:
    """Fed what the detector hears and scores; saves detections and near misses to the spool.

    Stream positions are counted in samples since the stream began; the hop a score belongs
    to ends at a multiple of the model's hop, as the streaming scorers count them.
    """

    def __init__(
        self,
        settings: CaptureSettings,
        say: Callable[[str], None] | None = None,
        sample_rate: int = SAMPLE_RATE_HZ,
    ) -> None:
        self.settings = settings
        self.spool = Spool(settings.spool_dir, settings.max_spool_bytes)
        self.spool.remove_incomplete()
        self._say = say or (lambda _: None)
        self._rate = sample_rate
        self._pre = round(settings.pre_seconds * sample_rate)
        self._post = round(settings.post_seconds * sample_rate)
        self._keep = self._pre + self._post + sample_rate // 2  # ring: a capture plus slack
        self._audio: deque[np.ndarray] = deque()
        self._audio_start = 0  # stream position of the ring's first sample
        self._samples = 0  # samples heard since the stream began
        self._scores: deque[tuple[int, float]] = deque()  # (hop end position, smoothed score)
        self._unchecked: deque[tuple[int, float]] = deque()  # not yet judged as near misses
        self._pending: list[_Pending] = []
        self._last_near_miss: int | None = None
        self._room_every = round(settings.room_every_seconds * sample_rate)
        self._room_length = round(settings.room_seconds * sample_rate)
        self._room_guard = round(ROOM_GUARD_SECONDS * sample_rate)
        self._next_room = self._room_every  # the first stretch begins one period in
        self._room: _RoomStretch | None = None
        self.captures_written = 0

    def feed(self, chunk: np.ndarray, hops: HopScores) -> list[Path]:
        """One chunk as the detector heard it, with its hop scores; the captures now written."""
        self._remember(chunk)
        hop = hops.hop_samples
        last_end = self._samples // hop * hop
        hop_ends = []
        for i, score in enumerate(hops.scores):
            end = last_end - (len(hops.scores) - 1 - i) * hop
            hop_ends.append(end)
            self._scores.append((end, float(score)))
            self._unchecked.append((end, float(score)))
            if i in hops.fired:
                self._pending.append(
                    _Pending("wake", end, hops.model_id, hops.threshold, hops.hop_seconds)
                )
        if len(hops.scores):
            self._check_near_misses(hops)
        while self._scores and self._scores[0][0] < self._samples - self._keep:
            self._scores.popleft()
        due = [p for p in self._pending if p.peak_sample + self._post <= self._samples]
        written = [path for p in due if (path := self._write(p)) is not None]
        if self._room_every:
            room = self._keep_room_audio(chunk, hop_ends, hops)
            written += [room] if room is not None else []
        return written

    def close(self) -> list[Path]:
        """The stream ended: write what is pending with the audio there is."""
        return [path for p in list(self._pending) if (path := self._write(p)) is not None]

    def _remember(self, chunk: np.ndarray) -> None:
        self._audio.append(chunk.astype(np.float32, copy=False))
        self._samples += len(chunk)
        while self._samples - self._audio_start - len(self._audio[0]) >= self._keep:
            self._audio_start += len(self._audio.popleft())

    def _check_near_misses(self, hops: HopScores) -> None:
        """Hops heard `post_seconds` ago or more: their whole capture is known by now."""
        horizon = self._scores[-1][0] - self._post
        while self._unchecked and self._unchecked[0][0] <= horizon:
            end, score = self._unchecked.popleft()
            if self._is_near_miss(end, score, hops.threshold):
                self._last_near_miss = end
                self._pending.append(
                    _Pending("near_miss", end, hops.model_id, hops.threshold, hops.hop_seconds)
                )

    def _is_near_miss(self, end: int, peak: float, threshold: float) -> bool:
        if not self.settings.near_miss_fraction * threshold <= peak < threshold:
            return False
        gap = round(self.settings.near_miss_min_gap_seconds * self._rate)
        if self._last_near_miss is not None and end - self._last_near_miss < gap:
            return False
        around = [(e, s) for e, s in self._scores if end - self._pre < e <= end + self._post]
        if any(s >= threshold for _, s in around):  # part of a detection: that one is saved
            return False
        # A local peak: above the second before it, not below the second after it.
        before = [s for e, s in around if end - self._post <= e < end]
        after = [s for e, s in around if e > end]
        return all(s < peak for s in before) and all(s <= peak for s in after)

    def _keep_room_audio(
        self, chunk: np.ndarray, hop_ends: list[int], hops: HopScores
    ) -> Path | None:
        """Go on with the room stretch; the stretch's path once it is spooled."""
        chunk_start = self._samples - len(chunk)
        if self._room is None:
            if chunk_start < self._next_room:
                return None
            self._room = _RoomStretch(chunk_start, [])
        room = self._room
        end = room.start + self._room_length
        kept = sum(len(a) for a in room.audio)
        if room.quiet and kept < self._room_length:
            room.audio.append(chunk[: self._room_length - kept].astype(np.float32, copy=False))
        near = self.settings.near_miss_fraction * hops.threshold
        for i, (hop_end, score) in enumerate(zip(hop_ends, hops.scores, strict=True)):
            if room.start < hop_end <= end + self._room_guard and (
                score >= near or i in hops.fired
            ):
                room.quiet = False
            if room.start < hop_end <= end:
                room.peak = max(room.peak, float(score))
        if self._samples < end + self._room_guard:
            return None
        self._room = None
        self._next_room = max(room.start + self._room_every, self._samples)
        if not room.quiet:
            return None
        return self._write_room(room, hops)

    def _write_room(self, room: _RoomStretch, hops: HopScores) -> Path | None:
        pending = _Pending("room", room.start, hops.model_id, hops.threshold, hops.hop_seconds)
        # Only the peak: a stretch has up to thousands of hops.
        return self._spool(pending, np.concatenate(room.audio), room.peak, [])

    def _write(self, pending: _Pending) -> Path | None:
        self._pending.remove(pending)
        start = max(pending.peak_sample - self._pre, self._audio_start)
        stop = min(pending.peak_sample + self._post, self._samples)
        ring = np.concatenate(list(self._audio))  # (ring samples,)
        audio = ring[start - self._audio_start : stop - self._audio_start]
        scores = [s for e, s in self._scores if start < e <= stop]
        after_peak = [s for e, s in self._scores if pending.peak_sample <= e <= stop]
        return self._spool(pending, audio, max(after_peak, default=0.0), scores)

    def _spool(
        self, pending: _Pending, audio: np.ndarray, peak: float, scores: list[float]
    ) -> Path | None:
        """The pair into the spool: the WAV and its sidecar."""
        kind = pending.kind
        heard_ago = (self._samples - pending.peak_sample) / self._rate
        captured_at = datetime.now(timezone.utc) - timedelta(seconds=heard_ago)
        capture_id = uuid.uuid4().hex
        sidecar: dict[str, object] = {
            "capture_id": capture_id,
            "kind": kind,
            "model_id": pending.model_id,
            "threshold": pending.threshold,
            "peak_score": round(peak, 4),
            "scores": [round(s, 4) for s in scores],
            "hop_seconds": pending.hop_seconds,
            "captured_at": captured_at.isoformat(timespec="milliseconds"),
            "board": self.settings.board,
        }
        try:
            path = self.spool.add(capture_id, wav_bytes(audio, self._rate), sidecar)
        except OSError as exc:  # a full or failing card must not stop the detector
            self._say(f"could not save a {kind} capture: {exc}")
            return None
        if path is None:
            self._say(
                f"a {kind} capture does not fit under the spool cap "
                f"({self.settings.max_spool_bytes} bytes, with any other files in "
                f"{self.settings.spool_dir}); raise --capture-max-mb"
            )
            return None
        self._say(f"captured {kind} {capture_id} (peak {sidecar['peak_score']})")
        self.captures_written += 1
        return path
