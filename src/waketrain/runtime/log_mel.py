"""MarbleNet's log-mel front end in numpy, so the board computes each frame once.

Training computes the same features inside the model (`training/features.py`, as
convolutions, so the exported graph takes raw audio); both use the geometry and filters
defined here. Frames lie on one grid: frame j covers samples [j * FRAME_HOP_SAMPLES,
j * FRAME_HOP_SAMPLES + N_FFT) with a Hann window of WIN_SAMPLES centred in it.
"""

from __future__ import annotations

import numpy as np

from waketrain.audio.constants import SAMPLE_RATE_HZ

WIN_SAMPLES = SAMPLE_RATE_HZ * 25 // 1000  # 25 ms
FRAME_HOP_SAMPLES = SAMPLE_RATE_HZ * 10 // 1000  # 10 ms
N_FFT = 512
LOG_FLOOR = 1e-6


def frames_for(samples: int) -> int:
    """Frames a window of `samples` holds."""
    return (samples - N_FFT) // FRAME_HOP_SAMPLES + 1


def frames_span(n_frames: int) -> int:
    """The fewest samples that hold `n_frames` frames (`frames_for` of it is `n_frames`)."""
    return (n_frames - 1) * FRAME_HOP_SAMPLES + N_FFT


def analysis_window() -> np.ndarray:
    """(N_FFT,) Hann window of WIN_SAMPLES centred in N_FFT zeros."""
    window = np.zeros(N_FFT)
    offset = (N_FFT - WIN_SAMPLES) // 2
    window[offset : offset + WIN_SAMPLES] = np.hanning(WIN_SAMPLES)
    return window


def mel_filterbank(
    n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE_HZ
) -> np.ndarray:
    """Triangular filters on the HTK mel scale, (n_mels, n_fft // 2 + 1)."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(np.array(20.0)), hz_to_mel(np.array(7600.0)), n_mels + 2)
    )
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    weights: np.ndarray = np.maximum(0.0, np.minimum(rising, falling))
    return weights.astype(np.float32)


class LogMelFrames:
    """Raw (not yet mean-normalised) log-mel energies of frames on the 10 ms grid."""

    def __init__(self, n_mels: int) -> None:
        self.n_mels = n_mels
        self._window = analysis_window()
        self._mel = mel_filterbank(n_mels).astype(np.float64)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Every whole frame of `audio` (which starts on the grid), (n_frames, n_mels)."""
        n = max(0, frames_for(len(audio)))
        if n == 0:
            return np.zeros((0, self.n_mels), np.float32)
        step = audio.strides[0]
        # A read-only view, (n, N_FFT). as_strided sets up in about half the time that
        # sliding_window_view does, and set-up is much of the cost for a chunk's few frames.
        framed = np.lib.stride_tricks.as_strided(
            audio, shape=(n, N_FFT), strides=(FRAME_HOP_SAMPLES * step, step), writeable=False
        )
        spectrum = np.fft.rfft(framed * self._window, axis=1)  # (n, N_FFT // 2 + 1)
        power = spectrum.real**2 + spectrum.imag**2
        return np.log(power @ self._mel.T + LOG_FLOOR).astype(np.float32)


def normalise(features: np.ndarray) -> np.ndarray:
    """Per-window mean removal over (n_mels, frames), as the model does: spectral shape, not
    the microphone's gain. (..., n_mels, frames) in and out."""
    centred: np.ndarray = features - features.mean(axis=(-2, -1), keepdims=True)
    return centred
