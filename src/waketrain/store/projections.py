"""labels.json and metrics.json: readable projections of the database, written atomically."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from waketrain.store.files import atomic_write_json, file_lock
from waketrain.store.health import DatasetSummary, dataset_summary
from waketrain.store.models import Clip, utcnow
from waketrain.store.registry import Registry


def _label_entry(clip: Clip) -> dict[str, Any]:
    return {
        "file": f"clips/{clip.id}.wav",
        "label": clip.label,
        "speaker": clip.speaker,
        "source": clip.source,
        "notes": clip.notes,
        "duration_seconds": round(clip.duration_seconds, 3),
        "quality_score": clip.quality_score,
        "quality_reasons": clip.quality_reasons,
        "created_at": clip.created_at.isoformat(),
        "deleted": clip.deleted_at is not None,
        "deleted_at": clip.deleted_at.isoformat() if clip.deleted_at else None,
        "deleted_by": clip.deleted_by,
    }


def write_projections(registry: Registry, dataset_id: str) -> DatasetSummary:
    """Rewrite both files from the database; returns the summary it wrote."""
    # The lock orders read-then-write across threads and processes, so an older snapshot
    # can never overwrite a newer one.
    with file_lock(registry.layout.projection_lock(dataset_id)):
        summary = dataset_summary(registry, dataset_id)
        with registry.sessions() as session:
            clips = session.scalars(
                select(Clip).where(Clip.dataset_id == dataset_id).order_by(Clip.created_at, Clip.id)
            )
            labels = {clip.id: _label_entry(clip) for clip in clips}
        generated = utcnow().isoformat()
        atomic_write_json(
            registry.layout.labels_path(dataset_id),
            {"dataset_id": dataset_id, "generated_at": generated, "clips": labels},
        )
        atomic_write_json(
            registry.layout.metrics_path(dataset_id),
            {"generated_at": generated, **summary.model_dump(mode="json")},
        )
    return summary
