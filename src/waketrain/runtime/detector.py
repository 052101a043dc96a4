"""The detector's core: audio chunks in, detections out, with the model hot-swappable.

The model path is normally a symlink (`current/wake_model.onnx`); when its target changes
(a deploy swapped `current`), the next chunk goes to the new model, already warmed up on the
last window of audio, so no audio is dropped and no detection window is lost.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from waketrain.runtime.loader import ExportedModel, load_export
from waketrain.runtime.streaming import ChunkScorer, Trigger

if TYPE_CHECKING:
    from waketrain.runtime.capture import CaptureRecorder
    from waketrain.runtime.publish import Publisher


LIVE_THREADS = 1  # a board streams one window per hop; spare cores stay with TARS


@dataclass(frozen=True)
class Detection:
    model_id: str
    phrase: str
    score: float
    threshold: float
    timestamp: float  # Unix time when the detector decided
    stream_seconds: float  # position in the audio stream, end of the window that fired
    energy: float  # RMS (0-1) of the audio that window heard

    def payload(self) -> dict[str, object]:
        return {
            "model_id": self.model_id,
            "phrase": self.phrase,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class HopScores:
    """What the last chunk did: a smoothed score per hop it completed, and the hops that fired."""

    scores: np.ndarray  # (n_hops,)
    fired: list[int]  # indices into `scores`
    hop_samples: int
    hop_seconds: float
    threshold: float
    model_id: str


class Detector:
    def __init__(self, model_path: Path, threshold: float | None = None) -> None:
        self.model_path = model_path
        self._threshold_override = threshold
        self._hops = 0  # hops scored since the stream began, across model swaps
        self._target: str | None = None
        self._recent: deque[np.ndarray] = deque()
        self._recent_samples = 0
        self.reload_error: str | None = None
        self.last_hops: HopScores | None = None  # for a capture recorder listening alongside
        self._stream: ChunkScorer
        self._load()

    @property
    def model(self) -> ExportedModel:
        return self._model

    @property
    def threshold(self) -> float:
        return self._threshold_override or self._model.threshold

    def _load(self) -> None:
        target = os.path.realpath(self.model_path)
        self._target = target  # a broken target is not retried until the path changes again
        if not os.path.isfile(target):
            raise FileNotFoundError(f"No model at {self.model_path} (resolves to {target}).")
        model = load_export(Path(target).parent, threads=LIVE_THREADS)
        stream = model.stream()
        if self._recent:  # warm the new model on the audio its window would already hold
            stream.process(np.concatenate(list(self._recent)))
        self._model, self._stream = model, stream
        self._trigger = Trigger(self.threshold, model.params.refractory_hops)

    def reload_if_changed(self) -> bool:
        """Swap to the model the path now points at.

        False when it did not change, or when the new one cannot be loaded: then the old
        model keeps listening and `reload_error` says why.
        """
        target = os.path.realpath(self.model_path)
        if target == self._target or not os.path.isfile(target):
            return False
        try:
            self._load()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            self.reload_error = f"kept {self._model.metadata['model_id']}: {target}: {exc}"
            return False
        self.reload_error = None
        return True

    def process(self, chunk: np.ndarray) -> list[Detection]:
        """Feed a chunk (float32, 16 kHz mono); detections it completes."""
        self._remember(chunk)
        scores = self._stream.process(chunk)
        first_hop = self._hops
        self._hops += len(scores)
        fired = self._trigger.update(scores)
        params = self._model.params
        metadata = self._model.metadata
        self.last_hops = HopScores(
            scores=scores,
            fired=fired,
            hop_samples=params.hop_samples,
            hop_seconds=params.hop_seconds,
            threshold=self.threshold,
            model_id=str(metadata["model_id"]),
        )
        if not fired:
            return []
        window = np.concatenate(list(self._recent))[-params.window_samples :]
        energy = float(np.sqrt(np.mean(np.square(window)))) if len(window) else 0.0
        return [
            Detection(
                model_id=str(metadata["model_id"]),
                phrase=str(metadata["phrase"]),
                score=float(scores[i]),
                threshold=self.threshold,
                timestamp=time.time(),
                stream_seconds=(first_hop + i + 1) * params.hop_seconds,
                energy=energy,
            )
            for i in fired
        ]

    def _remember(self, chunk: np.ndarray) -> None:
        """Keep about one model window of the latest audio, for warm-up after a swap."""
        self._recent.append(chunk)
        self._recent_samples += len(chunk)
        window = self._model.params.window_samples
        while self._recent_samples - len(self._recent[0]) >= window:
            self._recent_samples -= len(self._recent.popleft())


def run_detector(
    detector: Detector,
    chunks: Iterable[np.ndarray],
    publisher: Publisher,
    on_reload: Callable[[str], None] | None = None,
    recorder: CaptureRecorder | None = None,
) -> int:
    """Stream until the source ends; returns how many detections were published.

    With a `recorder`, every chunk and its hop scores go to it too (detections and near
    misses saved for review); what it still waits for is written when the source ends.
    """
    publisher.ready(
        str(detector.model.metadata["model_id"]), str(detector.model.metadata["phrase"])
    )
    published = 0
    for chunk in chunks:
        reloaded = detector.reload_if_changed()
        if detector.reload_error and on_reload is not None:
            on_reload(f"could not switch models: {detector.reload_error}")
            detector.reload_error = None
        if reloaded:
            model_id = str(detector.model.metadata["model_id"])
            publisher.ready(model_id, str(detector.model.metadata["phrase"]))
            if on_reload is not None:
                on_reload(f"now using {model_id}")
        for detection in detector.process(chunk):
            publisher.detection(detection)
            published += 1
        if recorder is not None and detector.last_hops is not None:
            recorder.feed(chunk, detector.last_hops)
    if recorder is not None:
        recorder.close()
    return published
