"""Log-mel front end as plain convolutions, so it lives inside the exported ONNX graph."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from waketrain.audio.constants import SAMPLE_RATE_HZ

WIN_SAMPLES = SAMPLE_RATE_HZ * 25 // 1000  # 25 ms
HOP_SAMPLES = SAMPLE_RATE_HZ * 10 // 1000  # 10 ms
N_FFT = 512


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> np.ndarray:
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
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


class LogMel(nn.Module):
    """(batch, samples) audio -> (batch, n_mels, frames) log-mel energies, mean-normalised."""

    def __init__(self, n_mels: int = 64) -> None:
        super().__init__()
        n_freq = N_FFT // 2 + 1
        window = np.zeros(N_FFT)
        offset = (N_FFT - WIN_SAMPLES) // 2
        window[offset : offset + WIN_SAMPLES] = np.hanning(WIN_SAMPLES)
        t = np.arange(N_FFT)
        freqs = np.arange(n_freq)[:, None]
        cos = np.cos(2 * np.pi * freqs * t / N_FFT) * window
        sin = -np.sin(2 * np.pi * freqs * t / N_FFT) * window
        basis = np.concatenate([cos, sin])[:, None, :]  # (2 * n_freq, 1, N_FFT)
        self.register_buffer("dft", torch.tensor(basis, dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(mel_filterbank(n_mels, N_FFT, SAMPLE_RATE_HZ)))
        self.n_freq = n_freq
        self.dft: torch.Tensor
        self.mel: torch.Tensor

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = nn.functional.conv1d(audio.unsqueeze(1), self.dft, stride=HOP_SAMPLES)
        real, imag = spec[:, : self.n_freq], spec[:, self.n_freq :]  # (B, F, T) each
        power = real * real + imag * imag
        logmel = torch.log(torch.matmul(self.mel, power) + 1e-6)  # (B, M, T)
        # Per-window mean removal: the model sees spectral shape, not the microphone gain.
        return logmel - logmel.mean(dim=(1, 2), keepdim=True)


def frames_for(samples: int) -> int:
    return (samples - N_FFT) // HOP_SAMPLES + 1
