"""Counts of what the registry holds, for monitoring (Prometheus reads them at each scrape)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from waketrain.store.models import Clip, Deployment, Job
from waketrain.store.registry import Registry


@dataclass
class RegistryStats:
    clips: dict[tuple[str, str], int] = field(default_factory=dict)  # (dataset, label) -> active
    jobs: dict[str, int] = field(default_factory=dict)  # status -> count
    deployments: dict[str, int] = field(default_factory=dict)  # status -> count
    # stage -> (seconds summed over succeeded jobs, jobs counted)
    stage_seconds: dict[str, tuple[float, int]] = field(default_factory=dict)


def registry_stats(registry: Registry) -> RegistryStats:
    stats = RegistryStats()
    with registry.sessions() as session:
        active = (
            select(Clip.dataset_id, Clip.label, func.count())
            .where(Clip.deleted_at.is_(None))
            .group_by(Clip.dataset_id, Clip.label)
        )
        stats.clips = {(d, label): n for d, label, n in session.execute(active)}
        for model, target in ((Job, stats.jobs), (Deployment, stats.deployments)):
            by_status = select(model.status, func.count()).group_by(model.status)
            target.update({status: n for status, n in session.execute(by_status)})
        succeeded = select(Job.metrics).where(Job.status == "succeeded")
        for (metrics,) in session.execute(succeeded):
            for stage, seconds in (metrics or {}).get("timings_seconds", {}).items():
                total, count = stats.stage_seconds.get(stage, (0.0, 0))
                stats.stage_seconds[stage] = (total + float(seconds), count + 1)
    return stats
