"""A causal keyword spotter over log-mel frames that streams with carried state.

In the spirit of microWakeWord's MixedNet: a strided stem, then depthwise-separable causal
convolutions (left-padded, some strided, some dilated), each with batch norm and ReLU, and a
pointwise head that gives one wake logit per hop of `hop_frames` frames. Every output reads
only the present and the past, so streaming needs no window: each layer keeps its last
inputs as state and a step computes only what the new frames add. `forward` over a whole
stretch of frames and `step` over the same frames in pieces, starting from zero states, give
the same logits (up to float rounding).

Input: raw log-mel frames of `runtime/log_mel.py` (10 ms hop, 25 ms Hann window, 512-point
FFT). The stem's filters sum to zero across the mel bands, which is the same as removing
each frame's mean first: the model hears spectral shape, not the microphone's gain, and
unlike MarbleNet's per-window mean this needs no look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ConvSpec:
    channels: int  # output channels
    kernel: int  # taps over time
    stride: int = 1
    dilation: int = 1


@dataclass(frozen=True)
class CausalNetConfig:
    """The defaults: 26 k parameters, a logit every 40 ms from the last 119 frames (1.2 s)."""

    mel_bands: int = 64
    stem: ConvSpec = ConvSpec(48, kernel=3, stride=2)  # 10 ms frames -> 20 ms
    # Few, small layers: at this size most of a streaming call's cost is onnxruntime's
    # overhead per layer (bench/detector_cost.py measures it).
    blocks: tuple[ConvSpec, ...] = (
        ConvSpec(64, kernel=3, stride=2),  # -> 40 ms: one logit per hop of 4 frames
        ConvSpec(64, kernel=5),
        ConvSpec(64, kernel=5, dilation=2),
        ConvSpec(64, kernel=5, dilation=4),
    )


class CausalConv(nn.Module):
    """Conv1d over time that sees only the present and the past.

    Output t reads inputs up to t * stride + stride - 1 (the last of its stride group), so
    `context` = dilation * (kernel - 1) - (stride - 1) earlier inputs: zeros at the start of
    `forward`, the state carried between calls in `step`. Subclasses say what the weight is.
    """

    def __init__(self, c_in: int, spec: ConvSpec) -> None:
        super().__init__()
        self.context = spec.dilation * (spec.kernel - 1) - (spec.stride - 1)
        if self.context <= 0:
            raise ValueError(
                f"a kernel of {spec.kernel} (dilation {spec.dilation}) must reach past its "
                f"stride of {spec.stride}; make the kernel longer or the stride shorter."
            )
        self.c_in = c_in
        self.stride = spec.stride
        self.dilation = spec.dilation

    def dense_weight(self) -> torch.Tensor:
        """(c_out, c_in, kernel): the whole layer as one plain convolution."""
        raise NotImplementedError

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv1d(
            x, self.dense_weight(), stride=self.stride, dilation=self.dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._convolve(nn.functional.pad(x, (self.context, 0)))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, c_in, n) with n a multiple of stride, state (B, c_in, context) ->
        (B, c_out, n // stride) and the next state."""
        joined = torch.cat([state, x], dim=2)  # (B, c_in, context + n)
        return self._convolve(joined), joined[:, :, -self.context :]

    def initial_state(self) -> torch.Tensor:
        """Zeros: what `forward` pads with, so a stream starts as a whole stretch does."""
        return torch.zeros(1, self.c_in, self.context)


class GainInvariantStem(CausalConv):
    """A full convolution over mel bands whose filters sum to zero across the bands, so a
    gain (the same constant added to every band of a log-mel frame) cancels."""

    def __init__(self, mel_bands: int, spec: ConvSpec) -> None:
        super().__init__(mel_bands, spec)
        self.weight = nn.Parameter(torch.empty(spec.channels, mel_bands, spec.kernel))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Conv1d's initialisation

    def dense_weight(self) -> torch.Tensor:
        return self.weight - self.weight.mean(dim=1, keepdim=True)  # (c_out, mel, kernel)


class SeparableConv(CausalConv):
    """Depthwise conv over time, then pointwise across channels: few parameters to train.

    `forward` runs the two factors; `step` runs their product as one dense convolution,
    which onnxruntime computes faster than a grouped convolution at these sizes.
    """

    def __init__(self, c_in: int, spec: ConvSpec) -> None:
        super().__init__(c_in, spec)
        self.depthwise = nn.Parameter(torch.empty(c_in, 1, spec.kernel))
        self.pointwise = nn.Parameter(torch.empty(spec.channels, c_in, 1))
        for weight in (self.depthwise, self.pointwise):
            nn.init.kaiming_uniform_(weight, a=5**0.5)  # nn.Conv1d's initialisation

    def dense_weight(self) -> torch.Tensor:
        return self.pointwise * self.depthwise.transpose(0, 1)  # (c_out, c_in, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(x, (self.context, 0))
        filtered = nn.functional.conv1d(
            padded, self.depthwise, stride=self.stride, dilation=self.dilation, groups=self.c_in
        )
        return nn.functional.conv1d(filtered, self.pointwise)


class CausalBlock(nn.Module):
    """A causal convolution, batch norm, ReLU."""

    def __init__(self, conv: CausalConv, channels: int) -> None:
        super().__init__()
        self.conv = conv
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x)))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, state = self.conv.step(x, state)
        return torch.relu(self.norm(out)), state


class CausalWakeNet(nn.Module):
    """(batch, mel, frames) raw log-mel -> (batch, frames // hop_frames) wake logits.

    Logit t reads frames up to (t + 1) * hop_frames - 1, the last `receptive_field_frames`
    of them; trailing frames that do not fill a hop give no logit yet.
    """

    def __init__(self, config: CausalNetConfig) -> None:
        super().__init__()
        self.config = config
        stem = CausalBlock(GainInvariantStem(config.mel_bands, config.stem), config.stem.channels)
        blocks, c_in = [stem], config.stem.channels
        for spec in config.blocks:
            blocks.append(CausalBlock(SeparableConv(c_in, spec), spec.channels))
            c_in = spec.channels
        self.blocks = nn.ModuleList(blocks)
        self._blocks = blocks  # the same modules, typed for `step`
        self.head = nn.Conv1d(c_in, 1, 1)

    @property
    def hop_frames(self) -> int:
        """Frames per logit: the product of the strides."""
        hop = 1
        for block in self._blocks:
            hop *= block.conv.stride
        return hop

    @property
    def receptive_field_frames(self) -> int:
        """How many of the latest frames one logit depends on."""
        field, spacing = 1, 1  # spacing: frames between neighbouring inputs of a layer
        for spec in (self.config.stem, *self.config.blocks):
            field += spec.dilation * (spec.kernel - 1) * spacing
            spacing *= spec.stride
        return field

    @property
    def first_valid_hop(self) -> int:
        """The first logit of `forward` whose receptive field starts inside its input (no zero
        padding)."""
        hop = self.hop_frames
        return -(-(self.receptive_field_frames - hop) // hop)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features
        for block in self._blocks:
            x = block(x)
        logits: torch.Tensor = self.head(x)  # (B, 1, T // hop_frames)
        return logits.squeeze(1)

    def step(
        self, frames: torch.Tensor, states: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """frames (B, mel, n), n a multiple of hop_frames, and one state per block ->
        (B, n // hop_frames) logits and the next states."""
        x, next_states = frames, []
        for block, state in zip(self._blocks, states, strict=True):
            x, state = block.step(x, state)
            next_states.append(state)
        logits: torch.Tensor = self.head(x)  # (B, 1, n // hop_frames)
        return logits.squeeze(1), next_states

    def initial_states(self) -> list[torch.Tensor]:
        return [block.conv.initial_state() for block in self._blocks]
