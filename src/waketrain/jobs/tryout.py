"""Score a recording with the current model, as the board would (the UI's "Try it")."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from waketrain.audio.decode import decode_upload
from waketrain.jobs.queue import current_job_id
from waketrain.runtime.loader import ExportedModel, load_export
from waketrain.runtime.model_card import CARD_FILE
from waketrain.runtime.streaming import Trigger, hop_end_seconds
from waketrain.store.errors import NotFound
from waketrain.store.registry import Registry

# The speech-embedding interpreter is not thread-safe; tries are rare, so one at a time.
_SCORING = threading.Lock()


class TryResult(BaseModel):
    job_id: str
    model_id: str
    phrase: str
    threshold: float
    hop_seconds: float
    duration_seconds: float
    times: list[float] = Field(description="Stream time (s) at the end of each hop's window.")
    scores: list[float] = Field(description="Smoothed wake score per hop, as the detector sees.")
    fired: bool
    detections: list[float] = Field(description="Times (s) at which the detector would fire.")


@lru_cache(maxsize=2)
def _exported(export_dir: Path, modified_ns: int) -> ExportedModel:
    """Loaded once per export; a new mtime (a re-export) is a new cache entry."""
    return load_export(export_dir)


def score_with_current_model(registry: Registry, data: bytes) -> TryResult:
    """Decode `data` like an upload and stream it through the current model, from silence."""
    job_id = current_job_id(registry)
    if job_id is None:
        raise NotFound("There is no current model yet: train one, or make a trained job current.")
    export_dir = (registry.layout.models / "current").resolve()
    audio = decode_upload(data, registry.clip_limits).samples
    model = _exported(export_dir, (export_dir / CARD_FILE).stat().st_mtime_ns)
    with _SCORING:
        scores = model.score_audio(audio)
    trigger = Trigger(model.threshold, model.params.refractory_hops)
    times = hop_end_seconds(len(scores), model.params)
    fired_at = [float(times[i]) for i in trigger.update(scores)]
    return TryResult(
        job_id=job_id,
        model_id=model.card.model_id,
        phrase=model.card.phrase,
        threshold=model.threshold,
        hop_seconds=model.params.hop_seconds,
        duration_seconds=len(audio) / model.params.sample_rate,
        times=np.round(times, 3).tolist(),
        # Unrounded: thresholds are score values, and a rounded score could fall either side.
        scores=scores.astype(np.float64).tolist(),
        fired=bool(fired_at),
        detections=fired_at,
    )
