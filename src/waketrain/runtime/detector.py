"""The detector's core: audio chunks in, detections out, with the model hot-swappable.

The model path is normally a symlink (`current/wake_model.onnx`); when its target changes
(a deploy swapped `current`), the next chunk goes to the new model, already warmed up on the
last window of audio, so no audio is dropped and no detection window is lost.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

import numpy as np

from waketrain.runtime.detection import Detection, HopScores
from waketrain.runtime.loader import ExportedModel, load_export
from waketrain.runtime.streaming import ChunkScorer, Trigger

LIVE_THREADS = 1  # a board streams one window per hop; spare cores stay with TARS


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
        if self._threshold_override is not None:  # 0 is an override too
            return self._threshold_override
        return self._model.threshold

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
            self.reload_error = f"kept {self._model.card.model_id}: {target}: {exc}"
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
        card = self._model.card
        self.last_hops = HopScores(
            scores=scores,
            fired=fired,
            hop_samples=params.hop_samples,
            hop_seconds=params.hop_seconds,
            threshold=self.threshold,
            model_id=card.model_id,
        )
        if not fired:
            return []
        window = np.concatenate(list(self._recent))[-params.window_samples :]
        energy = float(np.sqrt(np.mean(np.square(window)))) if len(window) else 0.0
        return [
            Detection(
                model_id=card.model_id,
                phrase=card.phrase,
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
