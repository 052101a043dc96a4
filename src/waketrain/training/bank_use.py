"""The negative bank in a job: calibration streams and hard-negative mining.

Each bank source either calibrates (never trained on) or trains, decided by its content
hash (negative_bank.is_calibration). Calibration sources are scored exactly as the board
scores a stream: every 80 ms window through the exported head, smoothed, then counted by
the trigger. Training sources feed each epoch a budget of windows, half of them the ones
the model being trained scores highest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from waketrain.runtime.streaming import Smoother, StreamingParams
from waketrain.training.config import BankConfig
from waketrain.training.negative_bank import (
    BankFeatures,
    NegativeBank,
    is_calibration,
    load_audio,
    load_oww_features,
)

SCORE_BLOCK = 8192  # windows scored at a time: bounded memory for hours of audio

ScoreWindows = Callable[[np.ndarray], np.ndarray]  # (n, 16, 96) -> (n,) raw wake probability


@dataclass
class BankPlan:
    """The bank's sources this job calibrates on and trains on."""

    calibration: list[BankFeatures]
    training: list[BankFeatures]

    @classmethod
    def of(cls, bank: NegativeBank, config: BankConfig) -> BankPlan:
        if not config.use:
            return cls([], [])
        features = load_oww_features(bank)
        share = config.calibration_share
        return cls(
            calibration=[f for f in features if is_calibration(f.source, share)],
            training=[f for f in features if not is_calibration(f.source, share)],
        )

    @property
    def calibration_hours(self) -> float:
        return sum(f.source.seconds for f in self.calibration) / 3600

    @property
    def training_hours(self) -> float:
        return sum(f.source.seconds for f in self.training) / 3600

    def summary(self) -> str:
        sets = sorted({f.set_id for f in self.calibration + self.training})
        return (
            f"negative bank: {self.calibration_hours:.2f} h calibration "
            f"({len(self.calibration)} files), {self.training_hours:.2f} h for training "
            f"({len(self.training)} files), sets: {', '.join(sets) or 'none'}"
        )


def oww_calibration_scores(
    sources: list[BankFeatures], score_windows: ScoreWindows, params: StreamingParams
) -> list[np.ndarray]:
    """Smoothed score per hop of each calibration source, as the board would stream it."""
    streams = []
    for source in sources:
        smoother = Smoother(params.smoothing_windows)
        parts = [
            smoother.update(
                score_windows(source.windows(np.arange(i, min(i + SCORE_BLOCK, source.n_windows))))
            )
            for i in range(0, source.n_windows, SCORE_BLOCK)
        ]
        streams.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
    return streams


def audio_calibration_scores(
    bank: NegativeBank, sources: list[BankFeatures], score_audio: Callable[[np.ndarray], np.ndarray]
) -> tuple[list[np.ndarray], float]:
    """For a model on raw audio: each calibration source's audio streamed through it."""
    with_audio = [s for s in sources if "audio" in s.source.features]
    streams = [score_audio(load_audio(bank, s.set_id, s.source)) for s in with_audio]
    return streams, sum(s.source.seconds for s in with_audio) / 3600


def calibration_scores(
    bank: NegativeBank,
    sources: list[BankFeatures],
    score_windows: ScoreWindows | None,
    score_audio: Callable[[np.ndarray], np.ndarray],
    params: StreamingParams,
) -> tuple[list[np.ndarray], float]:
    """Score streams of the calibration sources and their hours, by the model's own path:
    embedding windows for a head over speech embeddings, the audio for any other model."""
    if score_windows is not None:
        hours = sum(s.source.seconds for s in sources) / 3600
        return oww_calibration_scores(sources, score_windows, params), hours
    return audio_calibration_scores(bank, sources, score_audio)


class HardNegativeMiner:
    """Bank windows for each epoch: some at random, the rest those the model scores highest."""

    def __init__(self, sources: list[BankFeatures], config: BankConfig, seed: int) -> None:
        self._sources = sources
        self._config = config
        self._rng = np.random.default_rng(seed)
        counts = np.array([s.n_windows for s in sources], np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self.mined = 0  # hard windows handed out so far

    @property
    def n_windows(self) -> int:
        return int(self._offsets[-1])

    def _gather(self, flat: np.ndarray) -> np.ndarray:
        which = np.searchsorted(self._offsets, flat, side="right") - 1
        out = np.empty((len(flat), 16, 96), np.float32)
        for i, source in enumerate(self._sources):
            mine = which == i
            if mine.any():
                out[mine] = source.windows(flat[mine] - self._offsets[i])
        return out

    def epoch_windows(self, score: ScoreWindows | None) -> np.ndarray:
        """(k, 16, 96) windows for one epoch; `score` is the current model (None at first)."""
        k = min(self._config.windows_per_epoch, self.n_windows)
        if k == 0:
            return np.zeros((0, 16, 96), np.float32)
        n_hard = round(k * self._config.hard_share) if score is not None else 0
        chosen = self._rng.choice(self.n_windows, k - n_hard, replace=False)
        if n_hard and score is not None:
            pool_size = min(self._config.mining_pool, self.n_windows)
            pool = self._rng.choice(self.n_windows, pool_size, replace=False)
            scores = score(self._gather(pool))
            hardest = pool[np.argsort(scores)[::-1][:n_hard]]
            chosen = np.concatenate([chosen, hardest])
            self.mined += n_hard
        return self._gather(np.sort(chosen))
