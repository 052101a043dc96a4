"""What the detector tells the parts around it (publisher, capture recorder): plain types.

In a module of their own so that the detector, the publisher and the capture recorder depend
on them and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    model_id: str
    phrase: str
    score: float
    threshold: float
    timestamp: float  # Unix time when the detector decided
    stream_seconds: float  # position in the audio stream, end of the window that fired
    energy: float  # RMS (0-1) of the audio that window heard

    def payload(self) -> dict[str, object]:
        return {
            "model_id": self.model_id,
            "phrase": self.phrase,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class HopScores:
    """What the last chunk did: a smoothed score per hop it completed, and the hops that fired."""

    scores: np.ndarray  # (n_hops,)
    fired: list[int]  # indices into `scores`
    hop_samples: int
    hop_seconds: float
    threshold: float
    model_id: str
