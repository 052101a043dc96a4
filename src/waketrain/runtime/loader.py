"""Open an export folder (wake_model.onnx + its model card) as a streaming scorer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from waketrain.runtime.causal_stream import STEP_FILE, CausalStepModel, CausalStream
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES
from waketrain.runtime.marblenet_stream import ENCODER_FILE, MarbleNetEncoder, MarbleNetStream
from waketrain.runtime.model_card import ModelCard, read_card
from waketrain.runtime.onnx_model import OnnxWakeModel
from waketrain.runtime.oww_model import OwwHeadModel, OwwHeadStream
from waketrain.runtime.streaming import (
    ChunkScorer,
    StreamingParams,
    StreamingScorer,
    score_recording,
    score_stream,
)


@dataclass
class ExportedModel:
    card: ModelCard
    params: StreamingParams
    score_audio: Callable[[np.ndarray], np.ndarray]  # recording -> smoothed score per hop
    stream: Callable[[], ChunkScorer]  # a fresh live scorer, starting from silence
    # oww_head only: raw scores of (n, 16, 96) embedding windows, as the board scores them
    score_windows: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def threshold(self) -> float:
        return self.card.threshold


def load_export(export_dir: Path, threads: int | None = None) -> ExportedModel:
    """Any backend, by what its model card says it is.

    `threads=1` for live streaming: one window per hop gains nothing from a thread pool,
    whose spinning workers only cost CPU; batched evaluation leaves onnxruntime's default.
    """
    return open_export(export_dir, read_card(export_dir), threads)


def open_export(export_dir: Path, card: ModelCard, threads: int | None = None) -> ExportedModel:
    """The export's graphs under `card`, which may not be written to the folder yet."""
    params = StreamingParams.from_card(card)
    onnx_path = export_dir / "wake_model.onnx"
    if card.backend == "causal":
        # The step graph with carried state; wake_model.onnx is the contract for other tools.
        step = CausalStepModel(export_dir / STEP_FILE, threads=threads)

        def causal_stream() -> CausalStream:
            return CausalStream(step, params)

        def score_causal(audio: np.ndarray) -> np.ndarray:
            return score_recording(causal_stream(), audio)

        return ExportedModel(card, params, score_audio=score_causal, stream=causal_stream)
    if card.backend == "oww_head":
        head = OwwHeadModel(onnx_path, threads=threads)
        return ExportedModel(
            card,
            params,
            score_audio=partial(head.score_stream, params=params),
            stream=partial(OwwHeadStream, head, params),
            score_windows=head.score_embeddings,
        )
    encoder_path = export_dir / ENCODER_FILE
    if encoder_path.exists() and params.hop_samples % FRAME_HOP_SAMPLES == 0:
        encoder = MarbleNetEncoder(encoder_path, card.mel_bands, threads=threads)

        def stream() -> MarbleNetStream:
            return MarbleNetStream(encoder, params)

        def score_audio(audio: np.ndarray) -> np.ndarray:
            return score_recording(stream(), audio)

        return ExportedModel(card, params, score_audio=score_audio, stream=stream)
    # Exports from before encoder.onnx: every hop runs the whole window through the model.
    model = OnnxWakeModel(onnx_path, threads=threads)
    return ExportedModel(
        card,
        params,
        score_audio=partial(score_stream, model.score_windows, params),
        stream=partial(StreamingScorer, model.score_windows, params),
    )
