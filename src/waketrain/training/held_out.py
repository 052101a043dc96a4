"""A trained model on audio its job never saw, streamed as the board streams it.

`waketrain eval` and `bench/accuracy.py` both measure here: at the model's own threshold,
false rejects of wake-phrase recordings (in silence, and in background at 10 dB SNR) and
false accepts in each folder of negative audio, plus the whole threshold trade-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.runtime.loader import ExportedModel
from waketrain.store.errors import InvalidInput
from waketrain.training.data import read_folder_audio
from waketrain.training.evaluate import (
    THRESHOLDS,
    OperatingPoint,
    detected,
    frame_positives,
    sweep,
    trigger_times,
)

NOISY_SNR_DB = 10.0
FRAMING_SEED = 7
SILENCE = [np.zeros(SAMPLE_RATE_HZ * 5, np.float32)]  # the bed of the clean figure


@dataclass
class TestAudio:
    positives: list[np.ndarray]  # recordings of the wake phrase, one each
    background: list[np.ndarray]  # what the positives are set in for the noisy figure
    negatives: dict[str, list[np.ndarray]]  # name -> recordings without the phrase

    @classmethod
    def from_folders(
        cls, positives: list[Path], negatives: list[Path], background: list[Path] | None = None
    ) -> TestAudio:
        """Every audio file under each folder; the background defaults to the negatives."""
        if not positives or not negatives:
            raise InvalidInput("Give at least one folder of positives and one of negatives.")
        negative_audio = {str(folder): read_folder_audio(folder) for folder in negatives}
        return cls(
            positives=[clip for folder in positives for clip in read_folder_audio(folder)],
            background=(
                [clip for folder in background for clip in read_folder_audio(folder)]
                if background
                else [clip for clips in negative_audio.values() for clip in clips]
            ),
            negatives=negative_audio,
        )


@dataclass
class Measured:
    threshold: float
    positives: int
    frr_clean: float
    frr_noisy: float
    false_accepts: dict[str, int]
    minutes: dict[str, float]
    trade_off: list[OperatingPoint]  # FRR at 10 dB, FAs over all negatives, per threshold

    @property
    def fa_per_hour(self) -> float:
        return sum(self.false_accepts.values()) / (sum(self.minutes.values()) / 60)

    def best_frr_within(self, fa_per_hour: float) -> tuple[float, float] | None:
        """(threshold, FRR at 10 dB) of this audio's own best threshold within the FA/h cap."""
        within = [p for p in self.trade_off if p.fa_per_hour <= fa_per_hour]
        best = min(within, key=lambda p: (p.frr, -p.threshold), default=None)
        return (best.threshold, best.frr) if best else None


def frr_at(
    model: ExportedModel,
    positives: list[np.ndarray],
    background: list[np.ndarray],
    snr_db: float,
    threshold: float,
) -> float:
    """False-reject rate of `positives` framed by `background` at `snr_db`."""
    stream = frame_positives(positives, background, seed=FRAMING_SEED, snr_db=snr_db)
    times = trigger_times(model.score_audio(stream.audio), threshold, model.params)
    window_seconds = model.params.window_samples / SAMPLE_RATE_HZ
    return float(1 - detected(times, stream.spans, window_seconds).mean())


def measure(model: ExportedModel, test: TestAudio) -> Measured:
    """The model's threshold on `test`, and its whole trade-off there."""
    p, threshold = model.params, model.threshold
    false_accepts, minutes, all_scores = {}, {}, []
    for name, clips in test.negatives.items():
        audio = np.concatenate(clips)  # one stream, as a day of audio reaches the board
        scores = model.score_audio(audio)
        all_scores.append(scores)
        false_accepts[name] = len(trigger_times(scores, threshold, p))
        minutes[name] = len(audio) / SAMPLE_RATE_HZ / 60
    noisy = frame_positives(test.positives, test.background, FRAMING_SEED, NOISY_SNR_DB)
    trade_off = sweep(
        model.score_audio(noisy.audio),
        noisy.spans,
        all_scores,
        sum(minutes.values()) / 60,
        p,
        sorted({*THRESHOLDS.tolist(), threshold}),
    )
    return Measured(
        threshold=threshold,
        positives=len(test.positives),
        frr_clean=frr_at(model, test.positives, SILENCE, 60.0, threshold),
        frr_noisy=next(point.frr for point in trade_off if point.threshold == threshold),
        false_accepts=false_accepts,
        minutes=minutes,
        trade_off=trade_off,
    )
