"""Log-mel front end as plain convolutions, so it lives inside the exported ONNX graph.

The geometry, window and filters are the runtime's (`runtime/log_mel.py`), whose numpy front
end computes the same features frame by frame on the board.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from waketrain.runtime.log_mel import (
    FRAME_HOP_SAMPLES,
    LOG_FLOOR,
    N_FFT,
    analysis_window,
    mel_filterbank,
)


class LogMel(nn.Module):
    """(batch, samples) audio -> (batch, n_mels, frames) log-mel energies, mean-normalised
    per window, or raw (`normalise=False`: `runtime/log_mel.py`'s LogMelFrames, as the
    causal model reads them)."""

    def __init__(self, n_mels: int = 64, normalise: bool = True) -> None:
        super().__init__()
        self.normalise = normalise
        n_freq = N_FFT // 2 + 1
        t = np.arange(N_FFT)
        freqs = np.arange(n_freq)[:, None]
        cos = np.cos(2 * np.pi * freqs * t / N_FFT) * analysis_window()
        sin = -np.sin(2 * np.pi * freqs * t / N_FFT) * analysis_window()
        basis = np.concatenate([cos, sin])[:, None, :]  # (2 * n_freq, 1, N_FFT)
        self.register_buffer("dft", torch.tensor(basis, dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(mel_filterbank(n_mels)))
        self.n_freq = n_freq
        self.dft: torch.Tensor
        self.mel: torch.Tensor

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = nn.functional.conv1d(audio.unsqueeze(1), self.dft, stride=FRAME_HOP_SAMPLES)
        real, imag = spec[:, : self.n_freq], spec[:, self.n_freq :]  # (B, F, T) each
        power = real * real + imag * imag
        logmel = torch.log(torch.matmul(self.mel, power) + LOG_FLOOR)  # (B, M, T)
        if not self.normalise:
            return logmel
        # Per-window mean removal: the model sees spectral shape, not the microphone gain.
        return logmel - logmel.mean(dim=(1, 2), keepdim=True)
