"""What a backend hands the pipeline: a model, its epochs, its validation and its export."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from waketrain.runtime.streaming import StreamingParams
from waketrain.store.errors import InvalidInput, NotFound, WaketrainError


class JobCancelled(WaketrainError):
    """The operator cancelled the job; checked between batches."""


@dataclass
class Exported:
    """An exported model, and how to stream audio through it exactly as the board will."""

    params: StreamingParams
    score_audio: Callable[[np.ndarray], np.ndarray]  # recording -> smoothed score per hop
    parity: float  # largest ONNX Runtime vs PyTorch difference on held-out windows
    io: dict[str, Any]  # input and output names, dtypes and shapes, for metadata.json
    # oww_head: raw score of (n, 16, 96) embedding windows through the exported ONNX, one
    # window per call as the board runs it (scores the negative bank without decoding audio)
    score_windows: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class Fitting:
    model: nn.Module
    epochs: Iterator[float]  # trains one epoch per step; yields the mean training loss
    score_val: Callable[[], np.ndarray]  # wake probability of each held-out window
    val_labels: np.ndarray
    windows_per_epoch: int
    summary: str  # one log line: device, parameters, steps, class weight
    export: Callable[[Path], Exported]  # writes wake_model.onnx at the path
    amp: bool = False  # trained in mixed precision


def recall_at_low_false_alarm(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of held-out positives scoring above every held-out negative window but 0.5 %.

    The checkpoint is picked by what an operator feels (wakes caught while false wakes
    stay rare), not by validation loss.
    """
    negatives = scores[labels < 0.5]
    threshold = float(np.quantile(negatives, 0.995)) if len(negatives) else 0.5
    return float(np.mean(scores[labels > 0.5] > threshold))


def load_warm_start(jobs_dir: Path, job_id: str, model: nn.Module, backend: str) -> None:
    """Start from an earlier job's best checkpoint (incremental training)."""
    path = jobs_dir / job_id / "checkpoints" / "best.pt"
    if not path.exists():
        raise NotFound(f"No checkpoint for job {job_id!r} ({path}); pick a finished job.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    trained = checkpoint["config"].get("backend", "marblenet")
    if trained != backend:
        raise InvalidInput(
            f"Job {job_id} trained the {trained} backend; warm start needs the same backend "
            f"({backend})."
        )
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError:
        settings = {"marblenet": "model", "oww_head": "head", "causal": "causal"}[backend]
        shape = checkpoint["config"].get(settings)
        raise InvalidInput(
            f"Job {job_id} trained a different model shape ({shape}); warm start needs the "
            "same model settings."
        ) from None
