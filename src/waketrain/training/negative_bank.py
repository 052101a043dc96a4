"""The negative bank: hours of audio that is never the wake phrase, shared by every job.

`negatives/<set_id>/manifest.json` lists a set's sources (content hash, name, seconds) and
the features kept for each, computed once:

- `oww/<sha256>.npy`: openWakeWord speech embeddings, (n, 96) float32, as the detector
  computes them from a stream that starts in silence (the oww_head backend scores every
  16-embedding window of it); openWakeWord's own precomputed feature files are imported as
  they are, without decoding anything;
- `audio/<sha256>.pcm16`: the audio itself, 16 kHz mono PCM16 (what a marblenet model hears).

Long files are decoded block by block, never whole. Each source is written whole (temporary
file, fsync, rename) before the manifest names it, so an add killed at any point resumes at
the source it was on, and a file whose content is already in the bank adds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf
from pydantic import BaseModel, Field

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.audio.decode import AudioRejected, stream_file
from waketrain.runtime.oww_model import embedding_windows
from waketrain.runtime.speech_embedding import (
    CHUNK_SAMPLES,
    EMBEDDING_DIM,
    HEAD_EMBEDDINGS,
    EmbeddingStream,
    SpeechEmbedder,
)
from waketrain.store.errors import InvalidInput, NotFound
from waketrain.store.files import TEMP_PREFIX, atomic_write_json, file_lock, remove_temp_files
from waketrain.store.layout import Layout
from waketrain.store.models import utcnow

Kind = Literal["speech", "music", "tv", "room", "noise", "mixed"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
SET_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
HOP_SECONDS = CHUNK_SAMPLES / SAMPLE_RATE_HZ  # one embedding, one head score: 80 ms
OWW_FEATURES_SUFFIX = ".npy"


class BankSource(BaseModel):
    """One file in a set, and where its features are."""

    sha256: str
    name: str = Field(description="The path it was added from.")
    seconds: float
    layout: Literal["stream", "windows"] = Field(
        description="stream: consecutive embeddings (calibration and training); windows: "
        "independent 16x96 windows (training only: no stream to count false accepts on)."
    )
    features: dict[str, str] = Field(description="backend -> file, relative to the set.")


class NegativeSet(BaseModel):
    id: str
    kind: Kind
    created: str
    sources: list[BankSource] = []

    @property
    def hours(self) -> float:
        return sum(s.seconds for s in self.sources) / 3600


@dataclass
class AddProgress:
    file: str
    done_seconds: float
    total_seconds: float


@dataclass
class AddReport:
    set_id: str
    added: list[str]
    already_in_bank: list[str]  # "path (set/name)"
    refused: list[str]  # "path: reason"
    hours_added: float


def validate_set_id(set_id: str) -> str:
    if not SET_ID_PATTERN.fullmatch(set_id):
        raise InvalidInput(
            f"Invalid negative set id {set_id!r}: use 1-63 lowercase letters, digits, '-' and "
            "'_', starting with a letter or digit (e.g. 'living-room-tv')."
        )
    return set_id


def default_set_id(path: Path) -> str:
    """A set id from a folder or file name: 'Living Room TV.ogg' -> 'living-room-tv'."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_")
    return slug[:63] or "negatives"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class NegativeBank:
    """The registry's negatives/ folder."""

    def __init__(self, layout: Layout) -> None:
        self.root = layout.negatives
        self._lock = layout.locks / "negatives.lock"

    def set_dir(self, set_id: str) -> Path:
        return self.root / validate_set_id(set_id)

    def sets(self) -> list[NegativeSet]:
        if not self.root.is_dir():
            return []
        manifests = sorted(self.root.glob("*/manifest.json"))
        return [NegativeSet.model_validate_json(m.read_text()) for m in manifests]

    def get(self, set_id: str) -> NegativeSet:
        path = self.set_dir(set_id) / "manifest.json"
        if not path.exists():
            known = ", ".join(s.id for s in self.sets()) or "none yet"
            raise NotFound(f"No negative set {set_id!r} (sets: {known}).")
        return NegativeSet.model_validate_json(path.read_text())

    def remove(self, set_id: str) -> NegativeSet:
        """Take a set out of the bank; jobs already trained keep their figures."""
        removed = self.get(set_id)
        with file_lock(self._lock):
            trash = self.root / f"{TEMP_PREFIX}removed-{set_id}"
            os.replace(self.set_dir(set_id), trash)  # gone from the bank in one step
        shutil.rmtree(trash, ignore_errors=True)
        return removed

    def add(
        self,
        paths: Iterable[Path],
        set_id: str,
        kind: Kind,
        progress: Callable[[AddProgress], None] = lambda _: None,
        embedder: SpeechEmbedder | None = None,
        names_relative_to: Path | None = None,
    ) -> AddReport:
        """Add every audio file and openWakeWord feature file under `paths` to set `set_id`.

        Resumable: run it again after an interruption and it continues where it stopped.
        Sources are named by their path, relative to `names_relative_to` when given (an
        upload's temporary folder says nothing). Adds to one set take turns.
        """
        validate_set_id(set_id)
        if kind not in KINDS:
            raise InvalidInput(f"Unknown kind {kind!r}; kinds: {', '.join(KINDS)}.")
        files = list(_files_under(paths))
        if not files:
            raise InvalidInput(
                "No files found under the given paths: give folders or files of audio "
                "(WAV, FLAC, OGG, MP3) or openWakeWord feature files (.npy)."
            )
        with file_lock(self._lock.with_name(f"negatives-{set_id}.lock")):
            return self._add(files, set_id, kind, progress, embedder, names_relative_to)

    def _add(
        self,
        files: list[Path],
        set_id: str,
        kind: Kind,
        progress: Callable[[AddProgress], None],
        embedder: SpeechEmbedder | None,
        names_relative_to: Path | None,
    ) -> AddReport:
        folder = self.set_dir(set_id)
        for sub in ("oww", "audio"):
            remove_temp_files(folder / sub)
        report = AddReport(set_id, [], [], [], 0.0)
        sizes = {f: _seconds_of(f) for f in files}
        total, done = sum(sizes.values()), 0.0
        known = {s.sha256: f"set {n.id}, as {s.name}" for n in self.sets() for s in n.sources}
        embedder = embedder or SpeechEmbedder()
        for path in files:
            sha = file_sha256(path)
            name = path.relative_to(names_relative_to) if names_relative_to else path
            if sha in known:
                report.already_in_bank.append(f"{name} ({known[sha]})")
            else:
                try:
                    source = self._write_source(folder, path, sha, embedder, done, total, progress)
                except (AudioRejected, InvalidInput) as exc:
                    report.refused.append(f"{name}: {exc}")
                else:
                    self._record(set_id, kind, source.model_copy(update={"name": str(name)}))
                    known[sha] = f"set {set_id}, as {name}"
                    report.added.append(str(name))
                    report.hours_added += source.seconds / 3600
            done += sizes[path]
            progress(AddProgress(str(path), done, total))
        return report

    def _record(self, set_id: str, kind: Kind, source: BankSource) -> None:
        with file_lock(self._lock):
            path = self.set_dir(set_id) / "manifest.json"
            if path.exists():
                current = NegativeSet.model_validate_json(path.read_text())
            else:
                current = NegativeSet(id=set_id, kind=kind, created=utcnow().isoformat())
            if all(s.sha256 != source.sha256 for s in current.sources):
                current.sources.append(source)
            atomic_write_json(path, current.model_dump(mode="json"))

    def _write_source(
        self,
        folder: Path,
        path: Path,
        sha: str,
        embedder: SpeechEmbedder,
        done: float,
        total: float,
        progress: Callable[[AddProgress], None],
    ) -> BankSource:
        if path.suffix.lower() == OWW_FEATURES_SUFFIX:
            return _import_oww_features(folder, path, sha)
        oww, audio = Path("oww") / f"{sha}.npy", Path("audio") / f"{sha}.pcm16"
        stream = EmbeddingStream(embedder)
        embeddings = [stream.start()]
        samples = 0
        with _written_whole(folder / audio) as pcm:
            for block in stream_file(str(path)):
                embeddings.append(stream.process(block))
                pcm.write((block * 32767).astype("<i2").tobytes())
                samples += len(block)
                progress(AddProgress(str(path), done + samples / SAMPLE_RATE_HZ, total))
        if samples == 0:
            (folder / audio).unlink()
            raise InvalidInput("holds no audio samples")
        _save_npy(folder / oww, np.concatenate(embeddings))
        return BankSource(
            sha256=sha,
            name=str(path),
            seconds=samples / SAMPLE_RATE_HZ,
            layout="stream",
            features={"oww_head": str(oww), "audio": str(audio)},
        )


def _files_under(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and _is_candidate(p))
        elif path.is_file():
            yield path
        else:
            raise InvalidInput(f"{path} is neither a file nor a folder.")


def _is_candidate(path: Path) -> bool:
    # A folder's README, licences and manifests are not audio; anything else is tried.
    return path.suffix.lower() not in {".md", ".txt", ".json", ".csv", ".yaml", ".yml"}


def _seconds_of(path: Path) -> float:
    """Audio seconds of a file, for the progress bar (0 where the header cannot say)."""
    if path.suffix.lower() == OWW_FEATURES_SUFFIX:
        return 0.0
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        return 0.0
    return info.frames / info.samplerate if 0 < info.frames < 2**62 else 0.0


@contextlib.contextmanager
def _written_whole(path: Path) -> Iterator[BinaryIO]:
    """A file written under a temporary name, fsynced and renamed into place on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}"
    try:
        with tmp.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with _written_whole(path) as out:
        np.save(out, array)


def _import_oww_features(folder: Path, path: Path, sha: str) -> BankSource:
    """openWakeWord's precomputed features, kept as they are.

    (n, 96): consecutive embeddings of one stream (openWakeWord's validation set layout).
    (n, 16, 96): head windows; when each window is the previous one moved on by one
    embedding, they are one stream and are stored as its (n + 15, 96) embeddings.
    """
    try:
        features = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InvalidInput(f"not a NumPy .npy array ({exc})") from None
    if features.dtype not in (np.float16, np.float32, np.float64):
        raise InvalidInput(f"holds {features.dtype} values; openWakeWord features are floats")
    oww = Path("oww") / f"{sha}.npy"
    layout: Literal["stream", "windows"]
    if features.ndim == 2 and features.shape[1] == EMBEDDING_DIM:
        stream, layout = np.asarray(features), "stream"
    elif features.ndim == 3 and features.shape[1:] == (HEAD_EMBEDDINGS, EMBEDDING_DIM):
        if _consecutive(features):
            stream = np.concatenate([features[0], features[1:, -1]])
            layout = "stream"
        else:
            stream, layout = np.asarray(features), "windows"
    else:
        raise InvalidInput(
            f"has shape {features.shape}; openWakeWord feature files are (n, 96) embeddings "
            f"or (n, {HEAD_EMBEDDINGS}, {EMBEDDING_DIM}) windows"
        )
    if len(stream) < HEAD_EMBEDDINGS:
        raise InvalidInput("holds fewer than 16 embeddings: not one head window")
    if not np.isfinite(stream).all():
        raise InvalidInput("holds values that are not numbers (NaN or infinity)")
    _save_npy(folder / oww, stream.astype(np.float32))
    hops = len(stream) - (HEAD_EMBEDDINGS - 1) if layout == "stream" else len(stream)
    seconds = (
        hops * HOP_SECONDS if layout == "stream" else len(stream) * HEAD_EMBEDDINGS * HOP_SECONDS
    )
    return BankSource(
        sha256=sha,
        name=str(path),
        seconds=seconds,
        layout=layout,
        features={"oww_head": str(oww)},
    )


def _consecutive(windows: np.ndarray, block: int = 4096) -> bool:
    for start in range(0, len(windows) - 1, block):
        part = np.asarray(windows[start : start + block + 1])
        if not np.array_equal(part[1:, :-1], part[:-1, 1:]):
            return False
    return True


@dataclass
class BankFeatures:
    """One source's oww_head features, memory-mapped."""

    set_id: str
    kind: str
    source: BankSource
    embeddings: np.ndarray  # (n, 96) stream, or (n, 16, 96) windows

    def windows(self, starts: np.ndarray | None = None) -> np.ndarray:
        """Head windows (all, or those starting at `starts`), (k, 16, 96) float32."""
        if self.source.layout == "windows":
            chosen = self.embeddings if starts is None else self.embeddings[starts]
            return np.asarray(chosen, np.float32)
        if starts is None:
            return embedding_windows(np.asarray(self.embeddings, np.float32))
        index = np.asarray(starts)[:, None] + np.arange(HEAD_EMBEDDINGS)
        return np.asarray(self.embeddings[index], np.float32)

    @property
    def n_windows(self) -> int:
        if self.source.layout == "windows":
            return len(self.embeddings)
        return max(0, len(self.embeddings) - HEAD_EMBEDDINGS + 1)


def load_oww_features(bank: NegativeBank) -> list[BankFeatures]:
    return [
        BankFeatures(
            s.id,
            s.kind,
            source,
            np.load(bank.set_dir(s.id) / source.features["oww_head"], mmap_mode="r"),
        )
        for s in bank.sets()
        for source in s.sources
        if "oww_head" in source.features
    ]


def audio_pcm(bank: NegativeBank, set_id: str, source: BankSource) -> np.ndarray:
    """A source's audio as memory-mapped PCM16, (n,): hours of it cost no memory."""
    return np.memmap(bank.set_dir(set_id) / source.features["audio"], dtype="<i2", mode="r")


def load_audio(bank: NegativeBank, set_id: str, source: BankSource) -> np.ndarray:
    """A source's audio as float32, (n,)."""
    return np.asarray(audio_pcm(bank, set_id, source), np.float32) / 32768.0


def is_calibration(source: BankSource, share: float) -> bool:
    """Whether a source calibrates thresholds (else it may be trained on), by its content.

    Decided by the hash alone, so every job (and the comparison with the current model)
    sees the same calibration stream, and adding sources never moves one across.
    """
    return source.layout == "stream" and int(source.sha256[:8], 16) / 2**32 < share
