"""Causal exports streamed with state: each 10 ms log-mel frame, and each layer's output for
it, is computed once.

`causal_step.onnx` (`training/causal_export.py` writes it) takes a fixed number of new raw
log-mel frames and every stateful layer's last inputs, and gives a wake logit per hop of
frames and the layers' next states. Nothing is recomputed: the cost per audio second is the
new frames' spectra and one small step per call, whatever the receptive field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, LogMelFrames, frames_for, frames_span
from waketrain.runtime.onnx_model import inference_session
from waketrain.runtime.streaming import Smoother, StreamingParams

STEP_FILE = "causal_step.onnx"
WHOLE_FILE = "causal_whole.onnx"  # the non-streaming twin, for scoring many windows at once


class CausalStepModel:
    """The exported step; its input and output shapes say the geometry and the states."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self._session = inference_session(path, threads)
        frames, *states = self._session.get_inputs()
        _, self.n_mels, self.frames_per_call = frames.shape  # [1, mel, frames_per_call]
        self.steps_per_call = self._session.get_outputs()[0].shape[1]  # logits [1, steps]
        self.hop_frames = self.frames_per_call // self.steps_per_call
        self._state_shapes = {state.name: tuple(state.shape) for state in states}
        self._outputs = ["logits", *(f"next_{name}" for name in self._state_shapes)]

    def initial_states(self) -> dict[str, np.ndarray]:
        """Zeros: the state of a stream that has heard nothing yet."""
        return {name: np.zeros(shape, np.float32) for name, shape in self._state_shapes.items()}

    def step(
        self, frames: np.ndarray, states: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """frames (frames_per_call, n_mels) raw log-mel -> (steps_per_call,) logits, next states."""
        batch = np.ascontiguousarray(frames.T[None])  # (1, n_mels, frames_per_call)
        logits, *next_states = self._session.run(self._outputs, {"frames": batch, **states})
        return logits[0], dict(zip(self._state_shapes, next_states, strict=True))


class CausalStream:
    """Chunks in, one smoothed score per hop out, from state carried between chunks.

    `params.hop_samples` must be the model's hop. `params.window_samples` is not read here: for
    this model it is the audio that fills the receptive field, what the detector replays into
    a new stream to warm it up.
    """

    def __init__(self, model: CausalStepModel, params: StreamingParams) -> None:
        model_hop = model.hop_frames * FRAME_HOP_SAMPLES
        if params.hop_samples != model_hop:
            raise ValueError(
                f"the model gives one score per {model_hop} samples ({model.hop_frames} frames), "
                f"not per {params.hop_samples}; stream it with hop_samples={model_hop}."
            )
        self._model = model
        self._mel = LogMelFrames(model.n_mels)
        self.params = params
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far: the next chunk starts a new one."""
        self._pending = np.zeros(0, np.float32)  # audio not yet stepped; starts on the frame grid
        self._states = self._model.initial_states()
        self._smoother = Smoother(self.params.smoothing_windows)

    def logits(self, chunk: np.ndarray) -> np.ndarray:
        """Raw wake logits of every hop that `chunk` completes a step call for, (n_hops,)."""
        self._pending = np.concatenate([self._pending, chunk.astype(np.float32, copy=False)])
        per_call = self._model.frames_per_call
        calls = frames_for(len(self._pending)) // per_call
        if calls <= 0:
            return np.zeros(0, np.float32)
        # Frames are computed only once a call's worth is in: numpy's cost per call, not per
        # frame, is most of the front end's.
        n_frames = calls * per_call
        frames = self._mel.frames(self._pending[: frames_span(n_frames)])  # (n_frames, n_mels)
        self._pending = self._pending[n_frames * FRAME_HOP_SAMPLES :]
        out = []
        for i in range(calls):
            logits, self._states = self._model.step(
                frames[i * per_call : (i + 1) * per_call], self._states
            )
            out.append(logits)
        return np.concatenate(out)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Smoothed wake probabilities of every hop that `chunk` completes a step call for,
        (n_hops,)."""
        probabilities = 1.0 / (1.0 + np.exp(-self.logits(chunk)))
        return self._smoother.update(probabilities)
