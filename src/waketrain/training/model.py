"""MarbleNet-style keyword spotter: 1D time-channel separable CNN with the front end inside.

Reference: NeMo's MarbleNet 3x2x64 (prologue, three residual blocks of R separable
sub-blocks with kernels 13/15/17, dilated epilogue); about 90 k parameters with defaults.
"""

from __future__ import annotations

import torch
from torch import nn

from waketrain.training.config import ModelConfig
from waketrain.training.features import LogMel


class SeparableConv(nn.Sequential):
    """Depthwise conv over time, then pointwise conv across channels, then batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv1d(
                c_in,
                c_in,
                kernel,
                padding=dilation * (kernel // 2),
                dilation=dilation,
                groups=c_in,
                bias=False,
            ),
            nn.Conv1d(c_in, c_out, 1, bias=False),
            nn.BatchNorm1d(c_out),
        )


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, repeats: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for r in range(repeats):
            layers.append(SeparableConv(c_in if r == 0 else c_out, c_out, kernel))
            if r < repeats - 1:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.skip = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.out = nn.Sequential(nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(self.body(x) + self.skip(x))
        return out


class MarbleNet(nn.Module):
    """(batch, samples) raw 16 kHz audio -> (batch,) wake probability."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, wide, p = config.channels, 2 * config.channels, config.dropout
        self.features = LogMel(config.mel_bands)
        self.encoder = nn.Sequential(
            SeparableConv(config.mel_bands, wide, 11),
            nn.ReLU(),
            nn.Dropout(p),
            ResidualBlock(wide, c, 13, config.sub_blocks, p),
            ResidualBlock(c, c, 15, config.sub_blocks, p),
            ResidualBlock(c, c, 17, config.sub_blocks, p),
            SeparableConv(c, wide, 29, dilation=2),
            nn.ReLU(),
            nn.Dropout(p),
            nn.Conv1d(wide, wide, 1, bias=False),
            nn.BatchNorm1d(wide),
            nn.ReLU(),
            nn.Conv1d(wide, 1, 1),
        )

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """(B, mel, T) features -> (B,) logits, averaged over time."""
        encoded: torch.Tensor = self.encoder(features)
        return encoded.mean(dim=2).squeeze(1)

    def logits(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            # The DFT convolution overflows float16; the front end stays in float32.
            features = self.features(audio.float())
        return self.classify(features)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(audio))


class FeatureClassifier(nn.Module):
    """MarbleNet without its front end: (batch, mel, frames) normalised log-mel -> (batch,)
    probability. Exported as encoder.onnx for the board's frame-by-frame front end."""

    def __init__(self, model: MarbleNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.classify(features))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
