"""An exported openWakeWord head (`[1, 16, 96]` embeddings -> `[1, 1]`) run over audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waketrain.runtime.onnx_model import inference_session
from waketrain.runtime.speech_embedding import (
    CHUNK_SAMPLES,
    EMBEDDING_DIM,
    HEAD_EMBEDDINGS,
    HEAD_WINDOW_SAMPLES,
    EmbeddingStream,
    SpeechEmbedder,
)
from waketrain.runtime.streaming import Smoother, StreamingParams


def head_params(
    sample_rate: int, smoothing_windows: int, refractory_seconds: float
) -> StreamingParams:
    """Streaming geometry of every head: a 1.99 s window every 80 ms."""
    return StreamingParams(
        sample_rate=sample_rate,
        window_samples=HEAD_WINDOW_SAMPLES,
        hop_samples=CHUNK_SAMPLES,
        smoothing_windows=smoothing_windows,
        refractory_seconds=refractory_seconds,
    )


def embedding_windows(embeddings: np.ndarray) -> np.ndarray:
    """(n, 96) consecutive embeddings -> (n - 15, 16, 96) head inputs, one per hop."""
    if len(embeddings) < HEAD_EMBEDDINGS:
        return np.zeros((0, HEAD_EMBEDDINGS, EMBEDDING_DIM), np.float32)
    view = np.lib.stride_tricks.sliding_window_view(embeddings, HEAD_EMBEDDINGS, axis=0)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


class OwwHeadModel:
    """The head as TARS runs it: one `[1, 16, 96]` window per call, every 80 ms."""

    def __init__(
        self, path: Path, embedder: SpeechEmbedder | None = None, threads: int | None = None
    ) -> None:
        self._session = inference_session(path, threads)
        self._input = self._session.get_inputs()[0].name
        self._embedder = embedder

    def score_embeddings(self, windows: np.ndarray) -> np.ndarray:
        """(n, 16, 96) -> (n,) wake probability."""
        out = [
            float(self._session.run(None, {self._input: windows[i : i + 1]})[0].reshape(-1)[0])
            for i in range(len(windows))
        ]
        return np.array(out, np.float32)

    @property
    def embedder(self) -> SpeechEmbedder:
        if self._embedder is None:
            self._embedder = SpeechEmbedder()
        return self._embedder

    def score_stream(self, audio: np.ndarray, params: StreamingParams) -> np.ndarray:
        """Smoothed score per 80 ms hop of a recording that starts from silence (batched)."""
        raw = self.score_embeddings(embedding_windows(self.embedder.embed_stream(audio)))
        return Smoother(params.smoothing_windows).update(raw)


class OwwHeadStream:
    """Chunks of any size in, one smoothed head score per 80 ms hop out: the detector's path.

    Keeps only what the next chunk needs (EmbeddingStream's state and the last 15
    embeddings), so each 80 ms costs one mel call, one embedding and one head call. It
    computes what OwwHeadModel.score_stream computes for the whole recording.
    """

    def __init__(self, model: OwwHeadModel, params: StreamingParams) -> None:
        self._model = model
        self.params = params
        self.reset()

    def reset(self) -> None:
        """The state after STREAM_LEAD_SAMPLES of silence, where embed_stream() starts too."""
        self._stream = EmbeddingStream(self._model.embedder)
        self._embeddings = self._stream.start()
        self._smoother = Smoother(self.params.smoothing_windows)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Smoothed scores for every 80 ms hop completed by `chunk`, (n_hops,)."""
        embeddings = np.concatenate([self._embeddings, self._stream.process(chunk)])
        self._embeddings = embeddings[-(HEAD_EMBEDDINGS - 1) :]
        return self._smoother.update(self._model.score_embeddings(embedding_windows(embeddings)))
