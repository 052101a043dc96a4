"""MarbleNet exports streamed with each 10 ms log-mel frame computed once.

An export holds `wake_model.onnx` (raw audio in: the contract any tool can run) and
`encoder.onnx` (mean-normalised log-mel features in). Consecutive windows share all but a
hop's worth of frames, so the board computes only the new frames in numpy and runs the
encoder once per hop, instead of the whole window's spectrum for every hop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, LogMelFrames, frames_for, normalise
from waketrain.runtime.onnx_model import inference_session
from waketrain.runtime.streaming import Smoother, StreamingParams

ENCODER_FILE = "encoder.onnx"


class MarbleNetEncoder:
    """`score_features(features)`: (n, n_mels, frames) float32 -> (n,) wake probability."""

    def __init__(self, path: Path, n_mels: int, threads: int | None = None) -> None:
        self._session = inference_session(path, threads)
        self.n_mels = n_mels

    def score_features(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0, np.float32)
        scores: np.ndarray = self._session.run(None, {"features": features})[0]
        return scores.astype(np.float32)


class MarbleNetStream:
    """Chunks in, one smoothed score per hop out: what StreamingScorer over wake_model.onnx
    gives for the same chunks, at a fraction of the cost."""

    def __init__(self, encoder: MarbleNetEncoder, params: StreamingParams) -> None:
        if params.hop_samples % FRAME_HOP_SAMPLES:
            raise ValueError(
                f"hop of {params.hop_samples} samples is not a whole number of "
                f"{FRAME_HOP_SAMPLES}-sample frames; frames cannot be shared between windows."
            )
        self._encoder = encoder
        self._mel = LogMelFrames(encoder.n_mels)
        self.params = params
        self._frames_per_hop = params.hop_samples // FRAME_HOP_SAMPLES
        self._frames_per_window = frames_for(params.window_samples)
        self.reset()

    def reset(self) -> None:
        p = self.params
        # Start from silence, as StreamingScorer does: its first window ends one hop in.
        self._pending = np.zeros(p.window_samples - p.hop_samples, np.float32)  # not yet framed
        self._seen = len(self._pending)  # samples of the (padded) stream so far
        self._frames = np.zeros((0, self._encoder.n_mels), np.float32)  # raw log-mel frames
        self._first_frame = 0  # grid index of self._frames[0]
        self._next_window = 0  # index of the next window to score
        self._smoother = Smoother(p.smoothing_windows)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Smoothed scores for every hop completed by `chunk`, (n_hops,)."""
        p = self.params
        self._pending = np.concatenate([self._pending, chunk.astype(np.float32, copy=False)])
        self._seen += len(chunk)
        new = self._mel.frames(self._pending)  # _pending starts on the frame grid
        self._pending = self._pending[len(new) * FRAME_HOP_SAMPLES :]
        self._frames = np.concatenate([self._frames, new])
        # Window n covers stream samples [n * hop, n * hop + window): ready once all are seen.
        n_ready = (self._seen - p.window_samples) // p.hop_samples + 1 - self._next_window
        if n_ready <= 0:
            return np.zeros(0, np.float32)
        start = self._next_window * self._frames_per_hop - self._first_frame
        stacked = np.lib.stride_tricks.sliding_window_view(
            self._frames[start:], self._frames_per_window, axis=0
        )[:: self._frames_per_hop][:n_ready]  # (n_ready, n_mels, frames)
        raw = self._encoder.score_features(normalise(stacked).astype(np.float32))
        self._next_window += n_ready
        keep_from = self._next_window * self._frames_per_hop - self._first_frame
        self._frames = self._frames[keep_from:]
        self._first_frame += keep_from
        return self._smoother.update(raw)
