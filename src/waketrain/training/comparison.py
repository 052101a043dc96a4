"""Is a new model at least as good as the current one? Both streamed over the same audio.

A finished job replaces the current model on its own only when, on the new job's held-out
positives and the same negative audio (its held-out clips and the negative bank's
calibration stream), each model at its own threshold misses no more wakes and fires no
more often. Otherwise the job is kept and marked; the operator can still promote it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.loader import load_export
from waketrain.runtime.model_card import CARD_FILE
from waketrain.runtime.streaming import StreamingParams
from waketrain.training.bank_use import calibration_scores
from waketrain.training.evaluate import PositiveStream, detected, trigger_times
from waketrain.training.negative_bank import BankFeatures, NegativeBank


@dataclass(frozen=True)
class Scorer:
    """What streaming a model needs: its scores of audio (and of bank windows), its rules."""

    score_audio: Callable[[np.ndarray], np.ndarray]
    score_windows: Callable[[np.ndarray], np.ndarray] | None
    params: StreamingParams
    threshold: float


@dataclass(frozen=True)
class Standing:
    threshold: float
    frr: float
    false_accepts: int


@dataclass(frozen=True)
class Comparison:
    current_job_id: str
    positives: int
    hours: float
    current: Standing
    new: Standing

    @property
    def at_least_as_good(self) -> bool:
        return (
            self.new.frr <= self.current.frr + 1e-9
            and self.new.false_accepts <= self.current.false_accepts
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"at_least_as_good": self.at_least_as_good}


def standing(
    model: Scorer,
    positives: PositiveStream,
    negatives: np.ndarray,
    bank: NegativeBank,
    sources: list[BankFeatures],
) -> Standing:
    """FRR on `positives` and false accepts on `negatives` + `sources`, at its threshold."""
    p, threshold = model.params, model.threshold
    times = trigger_times(model.score_audio(positives.audio), threshold, p)
    hits = detected(times, positives.spans, p.window_samples / p.sample_rate)
    streams, _ = calibration_scores(bank, sources, model.score_windows, model.score_audio, p)
    streams.append(model.score_audio(negatives))
    fired = sum(len(trigger_times(s, threshold, p)) for s in streams)
    return Standing(threshold, float(1 - hits.mean()) if len(hits) else 1.0, fired)


def compare_with_current(
    current_export: Path,
    new: Scorer,
    positives: PositiveStream,
    negatives: Sequence[np.ndarray],
    bank: NegativeBank,
    sources: list[BankFeatures],
) -> Comparison | None:
    """The new model against the one `current_export` holds; None when there is none."""
    if not (current_export / CARD_FILE).exists():
        return None
    loaded = load_export(current_export)
    current = Scorer(loaded.score_audio, loaded.score_windows, loaded.params, loaded.threshold)
    if current.score_windows is None or new.score_windows is None:
        sources = [s for s in sources if "audio" in s.source.features]  # both must hear them
    audio = np.concatenate(negatives) if negatives else np.zeros(0, np.float32)
    hours = len(audio) / SAMPLE_RATE_HZ / 3600 + sum(s.source.seconds for s in sources) / 3600
    return Comparison(
        current_job_id=loaded.card.job_id,
        positives=len(positives.spans),
        hours=hours,
        current=standing(current, positives, audio, bank, sources),
        new=standing(new, positives, audio, bank, sources),
    )
