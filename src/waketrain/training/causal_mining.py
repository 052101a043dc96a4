"""Negatives for the causal backend from the negative bank's audio, the hard ones mined.

The causal model gives one logit per hop over audio of any length, so finding where it
fires in the bank costs one pass over a stretch of it: each epoch scores `mining_seconds`
of the bank's training sources (random stretches) and hands back the training windows that
end at the highest-scoring hops, beside as many windows drawn at random. Calibration
sources are never read here (BankPlan keeps them apart).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES
from waketrain.training.negative_bank import BankFeatures, NegativeBank, audio_pcm

STRETCH_SECONDS = 30.0  # audio scored in one piece while mining
PCM_SCALE = 32768.0

# (n, samples) audio -> (n, hops) logits, hop h's last frame ending `hop_frames` * (h + 1)
# frames into the audio
HopLogits = Callable[[np.ndarray], np.ndarray]


class BankAudioNegatives:
    """Windows of `window` samples (`window_frames` log-mel frames) from the bank's audio."""

    def __init__(
        self,
        bank: NegativeBank,
        sources: list[BankFeatures],
        window_frames: int,
        window: int,
        hop_frames: int,
        seed: int,
    ) -> None:
        pcm = [audio_pcm(bank, s.set_id, s.source) for s in sources if "audio" in s.source.features]
        self._pcm = [p for p in pcm if len(p) >= window]
        self._lengths = np.array([len(p) for p in self._pcm], np.int64)
        self._window = window
        self._window_hops = window_frames // hop_frames
        self._hop_samples = hop_frames * FRAME_HOP_SAMPLES
        self._stretch = max(window, int(STRETCH_SECONDS * SAMPLE_RATE_HZ))
        self._rng = np.random.default_rng(seed)
        self.mined = 0  # hard windows handed out so far

    @property
    def hours(self) -> float:
        return float(self._lengths.sum()) / SAMPLE_RATE_HZ / 3600

    def __bool__(self) -> bool:
        return bool(self._pcm)

    def _places(self, k: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(source, start) of `k` random pieces of `length`, a source as likely as its length."""
        fits = np.maximum(self._lengths - length + 1, 0)
        which = self._rng.choice(len(self._pcm), k, p=fits / fits.sum())
        return which, self._rng.integers(0, fits[which])

    def _read(self, which: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        pieces = [self._pcm[w][s : s + length] for w, s in zip(which, starts, strict=True)]
        return np.stack(pieces).astype(np.float32) / PCM_SCALE

    def epoch_windows(
        self, k: int, hard_share: float, mining_seconds: float, logits: HopLogits | None
    ) -> np.ndarray:
        """(k, window) windows: `hard_share` of them ending at the hops where `logits` (the
        model being trained; None before its first epoch) is highest, each moment once, the
        rest at random (the random ones first)."""
        if k == 0 or not self._pcm:
            return np.zeros((0, self._window), np.float32)
        n_hard = round(k * hard_share) if logits is not None and mining_seconds > 0 else 0
        hard = self._hardest(n_hard, mining_seconds, logits) if n_hard and logits else None
        n_random = k - (0 if hard is None else len(hard))  # fewer moments found: more at random
        parts = [self._read(*self._places(n_random, self._window), self._window)]
        return np.concatenate(parts if hard is None else [*parts, hard])

    def _hardest(self, n: int, mining_seconds: float, logits: HopLogits) -> np.ndarray:
        length = int(min(self._stretch, self._lengths.max()))
        which, starts = self._places(
            max(1, round(mining_seconds * SAMPLE_RATE_HZ / length)), length
        )
        scores = logits(self._read(which, starts, length))  # (stretches, hops)
        # A hop can end a window once the window's hops all lie in the stretch.
        scores[:, : self._window_hops - 1] = -np.inf
        apart = self._window // 2  # one window per moment, even where stretches overlap
        found: list[tuple[int, int]] = []  # (source, start) of each hard window
        for flat in np.argsort(scores, axis=None)[::-1]:
            row, hop = divmod(int(flat), scores.shape[1])
            if len(found) == n or not np.isfinite(scores[row, hop]):
                break
            start = int(starts[row]) + (hop - self._window_hops + 1) * self._hop_samples
            if all(w != which[row] or abs(s - start) >= apart for w, s in found):
                found.append((int(which[row]), start))
        self.mined += len(found)
        if not found:  # no finite score: a model that diverged
            return np.zeros((0, self._window), np.float32)
        sources, window_starts = (np.array(column) for column in zip(*found, strict=True))
        return self._read(sources, window_starts, self._window)
