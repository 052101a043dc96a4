"""labels.json and metrics.json: readable projections of the database, written atomically."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select

from waketrain.store.files import atomic_write_json, file_lock
from waketrain.store.health import dataset_summary
from waketrain.store.models import Clip, utcnow
from waketrain.store.registry import Registry

if TYPE_CHECKING:
    from typing_extensions import Unpack

_LABEL_COLUMNS = (
    Clip.id,
    Clip.label,
    Clip.speaker,
    Clip.source,
    Clip.notes,
    Clip.duration_seconds,
    Clip.quality_score,
    Clip.quality_reasons,
    Clip.created_at,
    Clip.deleted_at,
    Clip.deleted_by,
)


def _label_entry(clip: Row[Unpack[tuple[Any, ...]]]) -> dict[str, Any]:  # of _LABEL_COLUMNS
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


@dataclass
class _Requests:
    """This process's requests to rewrite one dataset's projections, numbered in order."""

    made: int = 0  # the number of the newest request
    covered: int = 0  # every request up to this one is in the files


_requests: dict[Path, _Requests] = {}
_requests_guard = threading.Lock()


def write_projections(registry: Registry, dataset_id: str) -> None:
    """Rewrite both files from the database, after a change to the dataset was committed.

    Concurrent callers (parallel uploads) share one rewrite: a caller waiting for the lock
    returns at once if a rewrite that began after its change was committed already wrote it.
    """
    lock_path = registry.layout.projection_lock(dataset_id)
    with _requests_guard:
        requests = _requests.setdefault(lock_path, _Requests())
        requests.made += 1
        mine = requests.made
    # The lock orders read-then-write across threads and processes, so an older snapshot
    # can never overwrite a newer one.
    with file_lock(lock_path):
        with _requests_guard:
            if requests.covered >= mine:
                return
            covering = requests.made  # each of these changes is committed: the snapshot has it
        summary = dataset_summary(registry, dataset_id)
        with registry.sessions() as session:
            clips = session.execute(
                select(*_LABEL_COLUMNS)
                .where(Clip.dataset_id == dataset_id)
                .order_by(Clip.created_at, Clip.id)
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
        with _requests_guard:
            requests.covered = max(requests.covered, covering)
