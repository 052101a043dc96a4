"""Start-up reconciliation: after a crash, disk and database agree again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import select

from waketrain.store.files import remove_temp_files
from waketrain.store.models import Capture, Clip, Dataset
from waketrain.store.projections import write_projections
from waketrain.store.registry import Registry

log = structlog.get_logger(__name__)


@dataclass
class RecoveryReport:
    temp_files_removed: list[Path] = field(default_factory=list)
    orphan_clips_removed: list[Path] = field(default_factory=list)
    missing_clip_files: list[str] = field(default_factory=list)
    orphan_captures_removed: list[Path] = field(default_factory=list)


def reconcile_registry(registry: Registry) -> RecoveryReport:
    """Remove half-written files and clips whose upload never committed; rewrite projections.

    Run before the service accepts requests: a clip file without a database row belongs
    to an upload that was never acknowledged, so removing it loses nothing. The same holds
    for a board's capture (the board keeps it until its push is acknowledged), and a
    reviewed or discarded capture's file is already a clip, or unwanted. Temp files go
    everywhere the registry writes; where a worker may be writing one now, only old ones.
    """
    report = RecoveryReport()
    with registry.sessions() as session:
        dataset_ids = list(session.scalars(select(Dataset.id)))
        known = {
            (dataset_id, clip_id)
            for clip_id, dataset_id in session.execute(select(Clip.id, Clip.dataset_id))
        }
        waiting = {
            (dataset_id, capture_id)
            for capture_id, dataset_id in session.execute(
                select(Capture.id, Capture.dataset_id).where(Capture.status == "unreviewed")
            )
        }
    layout = registry.layout
    workers_may_write = registry.settings.stale_job_seconds
    for folder in (layout.root, layout.models, layout.transfers, layout.negatives):
        report.temp_files_removed += remove_temp_files(folder, workers_may_write)
    report.temp_files_removed += remove_temp_files(layout.scratch / "long-recordings")
    for dataset_id in dataset_ids:
        captures_dir = layout.captures_dir(dataset_id)
        report.temp_files_removed += remove_temp_files(captures_dir)
        for path in captures_dir.glob("*.wav") if captures_dir.is_dir() else []:
            if (dataset_id, path.stem) not in waiting:
                path.unlink()
                report.orphan_captures_removed.append(path)
        clips_dir = registry.layout.clips_dir(dataset_id)
        report.temp_files_removed += remove_temp_files(clips_dir)
        report.temp_files_removed += remove_temp_files(registry.layout.dataset_dir(dataset_id))
        on_disk = set()
        for path in clips_dir.glob("*.wav") if clips_dir.is_dir() else []:
            on_disk.add(path.stem)
            if (dataset_id, path.stem) not in known:
                path.unlink()
                report.orphan_clips_removed.append(path)
        report.missing_clip_files += [
            clip_id for d, clip_id in known if d == dataset_id and clip_id not in on_disk
        ]
        write_projections(registry, dataset_id)
    if (
        report.temp_files_removed
        or report.orphan_clips_removed
        or report.missing_clip_files
        or report.orphan_captures_removed
    ):
        log.warning(
            "registry reconciled",
            temp_files_removed=len(report.temp_files_removed),
            orphan_clips_removed=len(report.orphan_clips_removed),
            orphan_captures_removed=len(report.orphan_captures_removed),
            missing_clip_files=report.missing_clip_files,
        )
    return report
