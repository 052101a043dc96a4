"""ONNX exports of the causal model: its streaming step for the board, its whole-stretch twin.

The step (`runtime/causal_stream.py` runs it) takes `frames` float32 [1, mel, frames_per_call]
and one input per stateful layer, `state_<layer>` float32 [1, channels, context], and gives
`logits` float32 [1, steps_per_call] and `next_state_<layer>` of the same shapes as the
states. All shapes are fixed, so the graph itself says how to start a stream: zeros of each
state input's shape. The twin takes `features` float32 [batch, mel, frames] and gives
`logits` float32 [batch, frames // hop_frames], for scoring many windows at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from waketrain.runtime.causal_stream import STEP_FILE, WHOLE_FILE
from waketrain.training.causal_model import CausalWakeNet
from waketrain.training.export import ONNX_OPSET


@dataclass(frozen=True)
class CausalExport:
    step: Path
    whole: Path


class CausalStep(nn.Module):
    """`CausalWakeNet.step` with the states as separate tensors, as ONNX wants them."""

    def __init__(self, model: CausalWakeNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, next_states = self.model.step(frames, list(states))
        return (logits, *next_states)


def state_names(model: CausalWakeNet) -> list[str]:
    """One name per stateful layer: `state_stem`, `state_block1`, ..."""
    return ["state_stem"] + [f"state_block{i}" for i in range(1, len(model.blocks))]


def _export(
    module: nn.Module,
    path: Path,
    inputs: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> None:
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            module,
            inputs,
            str(tmp),
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=dynamic_axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    tmp.replace(path)


def export_causal_stream(
    model: CausalWakeNet, folder: Path, steps_per_call: int = 4
) -> CausalExport:
    """Write STEP_FILE, one call of which consumes `steps_per_call` hops of frames, and
    WHOLE_FILE.

    Most of a call's cost is fixed, so fewer, longer calls cost less: four hops of 4 frames
    (160 ms, two 80 ms chunks) cost about 0.6 times what two hops per call do, and a score
    waits up to 120 ms for its call instead of 40 ms.
    """
    model = model.cpu().eval()
    states = state_names(model)
    frames = torch.zeros(1, model.config.mel_bands, steps_per_call * model.hop_frames)
    step_path = folder / STEP_FILE
    # eval() on the wrapper too: the exporter puts back the mode it found, recursively.
    _export(
        CausalStep(model).eval(),
        step_path,
        (frames, *model.initial_states()),
        (["frames", *states], ["logits", *(f"next_{name}" for name in states)]),
    )
    whole_path = folder / WHOLE_FILE
    _export(
        model,
        whole_path,
        (torch.zeros(1, model.config.mel_bands, model.receptive_field_frames),),
        (["features"], ["logits"]),
        {"features": {0: "batch", 2: "frames"}, "logits": {0: "batch", 1: "steps"}},
    )
    return CausalExport(step=step_path, whole=whole_path)
