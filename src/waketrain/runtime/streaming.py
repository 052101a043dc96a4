"""Streaming scoring shared by training's evaluation and the detector on the board.

Audio arrives in chunks of any size; every `hop_samples` a window of the last
`window_samples` is scored, scores are smoothed (moving average over the last
`smoothing_windows`), and a trigger fires when the smoothed score reaches the threshold,
then stays quiet for the refractory period. Evaluation and the detector run these same
objects, so the figures in a model card are the board's figures.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from waketrain.runtime.model_card import ModelCard

ScoreWindows = Callable[[np.ndarray], np.ndarray]  # (n, window_samples) float32 -> (n,)


@dataclass(frozen=True)
class StreamingParams:
    sample_rate: int
    window_samples: int
    hop_samples: int
    smoothing_windows: int
    refractory_seconds: float

    @classmethod
    def from_card(cls, card: ModelCard) -> StreamingParams:
        """The geometry an exported model was evaluated with, read from its model card."""
        rate = card.sample_rate
        return cls(
            sample_rate=rate,
            window_samples=round(card.window_seconds * rate),
            hop_samples=round(card.hop_seconds * rate),
            smoothing_windows=card.smoothing_windows,
            refractory_seconds=card.refractory_seconds,
        )

    @property
    def hop_seconds(self) -> float:
        return self.hop_samples / self.sample_rate

    @property
    def refractory_hops(self) -> int:
        return round(self.refractory_seconds / self.hop_seconds)


class Smoother:
    """Moving average over the last `n` raw scores, carried across calls."""

    def __init__(self, n: int) -> None:
        self._recent: deque[float] = deque(maxlen=n)

    def update(self, raw: np.ndarray) -> np.ndarray:
        smoothed = np.empty(len(raw), np.float32)
        for i, score in enumerate(raw):
            self._recent.append(float(score))
            smoothed[i] = sum(self._recent) / len(self._recent)
        return smoothed


class StreamingScorer:
    """Chunks in, one smoothed score per hop out; windows of a chunk are scored as one batch."""

    def __init__(self, score_windows: ScoreWindows, params: StreamingParams) -> None:
        self._score_windows = score_windows
        self.params = params
        self.reset()

    def reset(self) -> None:
        # Start from silence, as the detector does when the microphone opens.
        self._buffer = np.zeros(self.params.window_samples - self.params.hop_samples, np.float32)
        self._smoother = Smoother(self.params.smoothing_windows)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Smoothed scores for every hop completed by `chunk`, (n_hops,)."""
        p = self.params
        audio = np.concatenate([self._buffer, chunk.astype(np.float32, copy=False)])
        n_hops = (len(audio) - p.window_samples) // p.hop_samples + 1
        if n_hops <= 0:
            self._buffer = audio
            return np.zeros(0, np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(audio, p.window_samples)[
            :: p.hop_samples
        ][:n_hops]  # (n_hops, window_samples)
        raw = self._score_windows(np.ascontiguousarray(windows))
        self._buffer = audio[n_hops * p.hop_samples :]
        return self._smoother.update(raw)


class Trigger:
    """Fires when a smoothed score reaches the threshold; then waits out the refractory period."""

    def __init__(self, threshold: float, refractory_hops: int) -> None:
        self.threshold = threshold
        self.refractory_hops = refractory_hops
        self.reset()

    def reset(self) -> None:
        self._quiet_for = 0

    def update(self, smoothed: np.ndarray) -> list[int]:
        """Indices (into `smoothed`) of the hops that fire."""
        fired = []
        allowed_from = self._quiet_for  # the first hop of this call that may fire
        for i in np.flatnonzero(np.asarray(smoothed) >= self.threshold).tolist():
            if i >= allowed_from:
                fired.append(i)
                allowed_from = i + self.refractory_hops + 1
        self._quiet_for = max(0, allowed_from - len(smoothed))
        return fired


class ChunkScorer(Protocol):
    params: StreamingParams

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Audio chunk of any size in, a smoothed score per completed hop out."""
        ...


def score_recording(
    scorer: ChunkScorer, audio: np.ndarray, chunk_samples: int = 16_000 * 30
) -> np.ndarray:
    """Smoothed scores of a whole recording, fed through a fresh `scorer` chunk by chunk."""
    parts = [
        scorer.process(audio[i : i + chunk_samples]) for i in range(0, len(audio), chunk_samples)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def score_stream(
    score_windows: ScoreWindows,
    params: StreamingParams,
    audio: np.ndarray,
    chunk_samples: int = 16_000 * 30,
) -> np.ndarray:
    """Smoothed scores of a whole recording, every window scored by `score_windows`."""
    return score_recording(StreamingScorer(score_windows, params), audio, chunk_samples)


def hop_end_seconds(n_hops: int, params: StreamingParams) -> np.ndarray:
    """Stream time at which each hop's window ends (the scorer starts from a silent buffer)."""
    return (np.arange(n_hops) + 1) * params.hop_samples / params.sample_rate
