"""The causal model streamed as the board runs it: the same logits as the whole-stretch model
at every hop, state carried between chunks and forgotten on reset, and no torch on the board.

The model has random weights from a fixed seed: parity does not depend on training.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from tests.conftest import shared
from waketrain.audio.constants import SAMPLE_RATE_HZ
from waketrain.audio.decode import read_clip
from waketrain.runtime.causal_stream import CausalStepModel, CausalStream
from waketrain.runtime.log_mel import FRAME_HOP_SAMPLES, LogMelFrames
from waketrain.runtime.streaming import StreamingParams
from waketrain.training.causal_export import CausalExport, export_causal_stream
from waketrain.training.causal_model import CausalNetConfig, CausalWakeNet

CHUNK_SAMPLES = 1280  # 80 ms, what a board reads at a time
# Both sides compute in float32, in different orders: onnxruntime folds batch norm into the
# convolutions, the step runs each separable layer as one dense convolution, and the stem's
# zero-sum filters cancel the raw log-mel's large common level (about -10) in a different
# order. Over the 55 s stream below the largest difference is about 5e-6 on logits that
# spread by 0.3, so 1e-4 leaves a margin of 20; a frame out of place or a state not carried
# moves logits by tenths (the reset test shows it), a thousand times more.
LOGIT_TOLERANCE = 1e-4


@dataclass
class Exported:
    model: CausalWakeNet
    files: CausalExport


def clips(folder: str, n: int) -> list[np.ndarray]:
    return [read_clip(str(p)) for p in sorted(shared(folder).glob("*.flac"))[:n]]


def raw_features(audio: np.ndarray) -> torch.Tensor:
    """(1, mel, frames): the board's front end over the whole recording at once."""
    frames = LogMelFrames(CausalNetConfig().mel_bands).frames(audio)  # (frames, mel)
    return torch.from_numpy(np.ascontiguousarray(frames.T[None]))


def seeded_model() -> CausalWakeNet:
    """Random weights; batch norm statistics from real audio, so that activations and logits
    spread as a working model's do (zero-mean, unit-variance defaults would not)."""
    torch.manual_seed(0)
    model = CausalWakeNet(CausalNetConfig())
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.momentum = None  # a cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(raw_features(np.concatenate(clips("wake/snowboy", 10))))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    model = seeded_model()
    return Exported(model, export_causal_stream(model, tmp_path_factory.mktemp("causal")))


@pytest.fixture(scope="module")
def phrases_then_talk() -> np.ndarray:
    """Ten "computer" clips, then 14 s of read speech and 10 s of noise: one 50 s stream."""
    talk = clips("speech/librispeech", 1)[0]
    noise = clips("noise/misc", 1)[0][: 10 * SAMPLE_RATE_HZ]
    return np.concatenate([*clips("wake/computer", 10), talk, noise])


def new_stream(exported: Exported) -> CausalStream:
    step = CausalStepModel(exported.files.step, threads=1)
    params = StreamingParams(
        sample_rate=SAMPLE_RATE_HZ,
        window_samples=exported.model.receptive_field_frames * FRAME_HOP_SAMPLES,
        hop_samples=step.hop_frames * FRAME_HOP_SAMPLES,
        smoothing_windows=1,
        refractory_seconds=1.0,
    )
    return CausalStream(step, params)


def stream_logits(stream: CausalStream, audio: np.ndarray) -> np.ndarray:
    parts = [
        stream.logits(audio[i : i + CHUNK_SAMPLES]) for i in range(0, len(audio), CHUNK_SAMPLES)
    ]
    return np.concatenate(parts)


def test_streamed_logits_equal_the_whole_stretch_model_at_every_hop(
    exported: Exported, phrases_then_talk: np.ndarray
) -> None:
    with torch.no_grad():
        whole = exported.model(raw_features(phrases_then_talk))[0].numpy()
    streamed = stream_logits(new_stream(exported), phrases_then_talk)

    steps_per_call = CausalStepModel(exported.files.step).steps_per_call
    # Every hop but those of a last call the stream has not yet heard all of.
    assert len(whole) - steps_per_call < len(streamed) <= len(whole)
    assert whole.std() > 1000 * LOGIT_TOLERANCE  # logits that differ from hop to hop
    difference = np.abs(streamed - whole[: len(streamed)])
    assert difference.max() < LOGIT_TOLERANCE, (
        f"hop {difference.argmax()} of {len(streamed)} differs by {difference.max():.2e}"
    )


def test_the_whole_stretch_export_gives_the_model_s_logits(
    exported: Exported, phrases_then_talk: np.ndarray
) -> None:
    features = raw_features(phrases_then_talk[: 5 * SAMPLE_RATE_HZ])
    session = ort.InferenceSession(str(exported.files.whole), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"features": features.numpy()})
    with torch.no_grad():
        torch_logits = exported.model(features).numpy()
    assert onnx_logits.shape == torch_logits.shape
    assert np.abs(onnx_logits - torch_logits).max() < LOGIT_TOLERANCE


def test_reset_starts_a_new_stream_and_without_it_the_state_carries_over(
    exported: Exported, phrases_then_talk: np.ndarray
) -> None:
    step = CausalStepModel(exported.files.step)
    call_samples = step.frames_per_call * FRAME_HOP_SAMPLES
    # A ends on a call boundary, so that without a reset B's frames and calls line up with a
    # fresh stream's, and only the carried state can make them differ.
    a = phrases_then_talk[: 12 * call_samples]
    b = phrases_then_talk[len(a) : len(a) + 8 * SAMPLE_RATE_HZ]
    fresh = stream_logits(new_stream(exported), b)

    stream = new_stream(exported)
    stream_logits(stream, a)
    stream.reset()
    np.testing.assert_array_equal(stream_logits(stream, b), fresh)

    stream = new_stream(exported)
    hops_of_a = len(a) // stream.params.hop_samples
    carried = np.concatenate([stream_logits(stream, a), stream_logits(stream, b)])[hops_of_a:]
    n = min(len(carried), len(fresh))
    # Hop h reads frames up to (h + 1) * hop - 1, and receptive_field_frames of them: from
    # this hop on, none of them is A's, so A is forgotten.
    hop = step.hop_frames
    a_forgotten = -(-(exported.model.receptive_field_frames - hop) // hop)
    assert np.abs(carried[:a_forgotten] - fresh[:a_forgotten]).max() > 1000 * LOGIT_TOLERANCE
    np.testing.assert_allclose(
        carried[a_forgotten:n], fresh[a_forgotten:n], rtol=0, atol=LOGIT_TOLERANCE
    )


def test_the_same_constant_added_to_every_band_leaves_the_logits_as_they_were(
    exported: Exported, phrases_then_talk: np.ndarray
) -> None:
    """A microphone's gain shifts every band of a log-mel frame alike; the stem's filters sum
    to zero across the bands, so the model does not hear it (and needs no look-ahead)."""
    features = raw_features(phrases_then_talk[: 5 * SAMPLE_RATE_HZ])
    with torch.no_grad():
        louder = exported.model(features + 3.0)
        as_recorded = exported.model(features)
    assert torch.abs(louder - as_recorded).max() < LOGIT_TOLERANCE


def test_the_causal_runtime_imports_no_torch() -> None:
    """The board installs only the runtime extra."""
    code = "import sys, waketrain.runtime.causal_stream; assert 'torch' not in sys.modules"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_a_hop_the_model_does_not_have_is_refused(exported: Exported) -> None:
    step = CausalStepModel(exported.files.step)
    params = StreamingParams(SAMPLE_RATE_HZ, SAMPLE_RATE_HZ, 1600, 3, 1.0)
    with pytest.raises(ValueError, match="hop_samples=640"):
        CausalStream(step, params)
