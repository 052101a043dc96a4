"""Open an export folder (wake_model.onnx + metadata.json) as a streaming scorer."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from waketrain.runtime.onnx_model import OnnxWakeModel
from waketrain.runtime.oww_model import OwwHeadModel
from waketrain.runtime.streaming import StreamingParams, score_stream


@dataclass
class ExportedModel:
    metadata: dict[str, Any]
    params: StreamingParams
    score_audio: Callable[[np.ndarray], np.ndarray]  # recording -> smoothed score per hop

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])


def load_export(export_dir: Path) -> ExportedModel:
    """Either backend, by what its metadata.json says it is."""
    metadata = json.loads((export_dir / "metadata.json").read_text())
    params = StreamingParams.from_metadata(metadata)
    onnx_path = export_dir / "wake_model.onnx"
    if metadata.get("backend") == "oww_head":
        score_audio = partial(OwwHeadModel(onnx_path).score_stream, params=params)
    else:
        score_audio = partial(score_stream, OnnxWakeModel(onnx_path).score_windows, params)
    return ExportedModel(metadata, params, score_audio)
