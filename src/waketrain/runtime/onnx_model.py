"""Loads an exported wake model and scores windows with onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def inference_session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session, or an ImportError that names the extra to install."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "onnxruntime is needed to run a wake model: pip install 'waketrain[runtime]'"
        ) from exc
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxWakeModel:
    """`score_windows(windows)`: (n, window_samples) float32 audio -> (n,) wake probability."""

    def __init__(self, path: Path, max_batch: int = 256, threads: int | None = None) -> None:
        self._session = inference_session(path, threads)
        self._max_batch = max_batch

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        out = [
            self._session.run(None, {"audio": windows[i : i + self._max_batch]})[0]
            for i in range(0, len(windows), self._max_batch)
        ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
