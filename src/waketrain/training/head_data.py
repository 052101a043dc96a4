"""Training examples for the oww_head backend: augmented audio -> speech embeddings -> windows.

The embedding model is frozen and runs on the CPU, so augmentation happens on audio before
it: each clip is placed in a bed of background noise, stretched, reverberated and scaled,
embedded once, and every 16-embedding window of the result becomes an example. Embeddings
are cached under scratch/embeddings/ by the hash of the exact audio, and each clip's
augmentation is seeded by the clip's content, so a second job on the same data skips the
embedding model.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.oww_model import embedding_windows
from waketrain.runtime.speech_embedding import (
    CHUNK_SAMPLES,
    EMBEDDING_DIM,
    HEAD_EMBEDDINGS,
    SpeechEmbedder,
    heard_span,
    samples_for_windows,
)
from waketrain.store.files import atomic_write_bytes
from waketrain.training.augment import (
    add_noise,
    reverberate,
    shift_voice,
    synthetic_rirs,
    widen_voice,
)
from waketrain.training.config import AugmentConfig

CACHE_VERSION = b"oww-embeddings-v1"
SEGMENT_WINDOWS = 8  # head windows per positive segment
SEGMENT_SAMPLES = samples_for_windows(SEGMENT_WINDOWS)
PHRASE_END_MARGIN_SECONDS = (0.05, 0.45)  # the phrase ends this long before the last window
POSITIVE_TAIL_SECONDS = 0.5  # a window that ended up to this long after the phrase fires
FRAGMENT_SHARE = 0.65  # a window that hears at most this share of the phrase must not fire


@dataclass
class HeadExamples:
    """(N, 16, 96) embedding windows with their labels (1 = wake) and loss weights."""

    windows: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)

    def add(
        self, windows: np.ndarray, label: float | np.ndarray, weight: float | np.ndarray
    ) -> None:
        """Windows with one label and weight each, or the same for all."""
        if len(windows):
            n = (len(windows),)
            self.windows.append(windows)
            self.labels.append(np.broadcast_to(np.asarray(label, np.float32), n).copy())
            self.weights.append(np.broadcast_to(np.asarray(weight, np.float32), n).copy())

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.windows:
            empty = np.zeros((0, HEAD_EMBEDDINGS, EMBEDDING_DIM), np.float32)
            return empty, np.zeros(0, np.float32), np.zeros(0, np.float32)
        return (
            np.concatenate(self.windows).astype(np.float32),
            np.concatenate(self.labels),
            np.concatenate(self.weights),
        )


class EmbeddingCache:
    """Speech embeddings of exact audio, stored by content hash; safe to delete."""

    def __init__(self, folder: Path, embedder: SpeechEmbedder) -> None:
        self.folder = folder
        self.embedder = embedder
        self.hits = self.misses = 0

    def embed(self, audio: np.ndarray) -> np.ndarray:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        key = hashlib.sha256(CACHE_VERSION + audio.tobytes()).hexdigest()
        path = self.folder / key[:2] / f"{key}.npy"
        if path.exists():
            self.hits += 1
            cached: np.ndarray = np.load(path)
            return cached
        self.misses += 1
        embeddings = self.embedder.embed(audio)
        buffer = io.BytesIO()
        np.save(buffer, embeddings)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        return embeddings


class HeadExampleBuilder:
    """Turns clips into augmented, embedded head windows; one seeded variant at a time."""

    def __init__(
        self,
        cache: EmbeddingCache,
        background: list[np.ndarray],
        rirs: list[np.ndarray],
        augment: AugmentConfig,
        seed: int,
    ) -> None:
        self.cache = cache
        self.background = [b for b in background if len(b)]
        self.rirs = rirs
        self.augment = augment
        self.seed = seed

    def _rng(self, clip: np.ndarray, variant: int) -> np.random.Generator:
        """Per clip and variant, so a clip's augmentation does not depend on the others."""
        digest = hashlib.sha256(np.ascontiguousarray(clip, np.float32).tobytes()).digest()
        return np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little"), variant])

    def _speech(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The clip stretched (speed and pitch together), maybe in another voice, maybe
        reverberated."""
        a = self.augment
        if rng.random() < a.speed_probability:
            speed = rng.uniform(a.speed_min, a.speed_max)
            clip = np.interp(np.arange(0, len(clip) - 1, speed), np.arange(len(clip)), clip)
        clip = clip.astype(np.float32)
        # drawn only when on, so that off leaves every other draw as it was
        if a.voice_shift_probability and rng.random() < a.voice_shift_probability:
            limit = a.voice_shift_semitones
            clip = shift_voice(clip, rng.uniform(-limit, limit))
        if rng.random() < a.rir_probability:
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            if self.rirs:
                rir = torch.from_numpy(self.rirs[rng.integers(len(self.rirs))][None, :])
            else:
                rir = synthetic_rirs(1, gen, torch.device("cpu"))
            wet = reverberate(torch.from_numpy(clip)[None, :], rir, torch.tensor([True]))
            clip = wet[0].numpy()
        return clip

    def _finish(self, segment: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Background noise at a random SNR, then another microphone, level and preamp."""
        a = self.augment
        if self.background and rng.random() < a.noise_probability:
            source = self.background[rng.integers(len(self.background))]
            if len(source) < len(segment):
                source = np.tile(source, len(segment) // len(source) + 1)
            start = rng.integers(0, len(source) - len(segment) + 1)
            noise = torch.from_numpy(np.ascontiguousarray(source[start : start + len(segment)]))
            snr = torch.tensor([rng.uniform(a.snr_db_min, a.snr_db_max)], dtype=torch.float32)
            mixed = add_noise(
                torch.from_numpy(segment)[None, :], noise[None, :], snr, torch.ones(1)
            )
            segment = mixed[0].numpy()
        widened = widen_voice(
            torch.from_numpy(segment)[None, :],
            a,
            lambda n: torch.from_numpy(rng.random(n, dtype=np.float32)),
        )
        return widened[0].numpy()

    def phrase(self, clip: np.ndarray, variant: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows of one phrase placed near the end of a segment, with a label each.

        Label 1: the window heard the whole phrase, which ended at most 0.5 s before the
        window did. Label 0: the window heard at most 65 % of it (a fragment, a hard
        negative). Windows in between are left out: neither answer is clearly right.
        """
        rng = self._rng(clip, variant)
        speech = self._speech(clip, rng)[-(SEGMENT_SAMPLES - CHUNK_SAMPLES) :]
        _, last_window_end = heard_span(SEGMENT_WINDOWS - 1)
        end = last_window_end - int(rng.uniform(*PHRASE_END_MARGIN_SECONDS) * SAMPLE_RATE_HZ)
        start = max(0, end - len(speech))
        segment = np.zeros(SEGMENT_SAMPLES, np.float32)
        segment[start:end] = speech[len(speech) - (end - start) :]
        windows = embedding_windows(self.cache.embed(self._finish(segment, rng)))
        window_start, window_end = np.array([heard_span(w) for w in range(len(windows))]).T
        whole = (window_start <= start) & (window_end >= end)
        whole &= window_end - end <= POSITIVE_TAIL_SECONDS * SAMPLE_RATE_HZ
        fragment = window_end <= start + FRAGMENT_SHARE * (end - start)
        labels = np.where(whole, 1.0, np.where(fragment, 0.0, np.nan)).astype(np.float32)
        keep = ~np.isnan(labels)
        return windows[keep], labels[keep]

    def background_windows(self, clip: np.ndarray, variant: int, is_noise: bool) -> np.ndarray:
        """Every window of a non-wake clip set in background (noise clips are the background)."""
        rng = self._rng(clip, variant)
        if is_noise:
            segment = np.tile(clip, SEGMENT_SAMPLES // max(len(clip), 1) + 1)
            segment = segment[: max(len(clip), SEGMENT_SAMPLES)].astype(np.float32)
        else:
            speech = self._speech(clip, rng)
            length = max(SEGMENT_SAMPLES, len(speech) + int(0.5 * SAMPLE_RATE_HZ))
            segment = np.zeros(length, np.float32)
            offset = int(rng.integers(0, length - len(speech) + 1))
            segment[offset : offset + len(speech)] = speech
        return embedding_windows(self.cache.embed(self._finish(segment, rng)))
