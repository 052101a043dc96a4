"""Start-up reconciliation: after a crash, disk and database agree again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import select

from waketrain.store.files import remove_temp_files
from waketrain.store.models import Clip, Dataset
from waketrain.store.projections import write_projections
from waketrain.store.registry import Registry

log = structlog.get_logger(__name__)


@dataclass
class RecoveryReport:
    temp_files_removed: list[Path] = field(default_factory=list)
    orphan_clips_removed: list[Path] = field(default_factory=list)
    missing_clip_files: list[str] = field(default_factory=list)


def reconcile_registry(registry: Registry) -> RecoveryReport:
    """Remove half-written files and clips whose upload never committed; rewrite projections.

    Run before the service accepts requests: a clip file without a database row belongs
    to an upload that was never acknowledged, so removing it loses nothing.
    """
    report = RecoveryReport()
    with registry.sessions() as session:
        dataset_ids = list(session.scalars(select(Dataset.id)))
        known = {
            (dataset_id, clip_id)
            for clip_id, dataset_id in session.execute(select(Clip.id, Clip.dataset_id))
        }
    for dataset_id in dataset_ids:
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
    if report.temp_files_removed or report.orphan_clips_removed or report.missing_clip_files:
        log.warning(
            "registry reconciled",
            temp_files_removed=len(report.temp_files_removed),
            orphan_clips_removed=len(report.orphan_clips_removed),
            missing_clip_files=report.missing_clip_files,
        )
    return report
