"""Which workers are alive: each beats its row in `workers`, and /healthz counts the fresh ones.

A worker known to be gone (its supervisor saw the process exit) hands back at once what it
held, through the same recovery as a stale heartbeat, instead of after the stale window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import delete, func, select

from waketrain.deploy.service import DeploymentRecord, recover_worker_deployments
from waketrain.jobs.queue import JobRecord, recover_worker_jobs
from waketrain.store.models import Worker, utcnow
from waketrain.store.registry import Registry

NO_WORKER = (
    "No training worker is running: jobs and deployments wait in the queue until one starts "
    "(`waketrain worker`, or `waketrain serve` without --no-worker)."
)


class ServiceHealth(BaseModel):
    status: Literal["ok", "degraded"]
    reason: str | None = None
    workers: int


@dataclass(frozen=True)
class WorkerRecovery:
    jobs: list[JobRecord]
    deployments: list[DeploymentRecord]


def mark_worker_alive(registry: Registry, worker_id: str) -> None:
    with registry.sessions.begin() as session:
        session.merge(Worker(id=worker_id, heartbeat_at=utcnow()))


def forget_worker(registry: Registry, worker_id: str) -> None:
    with registry.sessions.begin() as session:
        session.execute(delete(Worker).where(Worker.id == worker_id))


def forget_stale_workers(registry: Registry, stale_after_seconds: float) -> None:
    """Rows of workers that died with no supervisor to say so (their jobs go stale too)."""
    cutoff = utcnow() - timedelta(seconds=stale_after_seconds)
    with registry.sessions.begin() as session:
        session.execute(delete(Worker).where(Worker.heartbeat_at < cutoff))


def service_health(registry: Registry) -> ServiceHealth:
    """Degraded while no worker has beaten within the stale window: the API answers, jobs wait."""
    cutoff = utcnow() - timedelta(seconds=registry.settings.stale_job_seconds)
    with registry.sessions() as session:
        workers = session.scalar(
            select(func.count()).select_from(Worker).where(Worker.heartbeat_at >= cutoff)
        )
    if not workers:
        return ServiceHealth(status="degraded", reason=NO_WORKER, workers=0)
    return ServiceHealth(status="ok", workers=workers)


def recover_worker(registry: Registry, worker_id: str, what_happened: str) -> WorkerRecovery:
    """A worker whose process is gone: no longer alive, its job and deployment recovered now.

    `what_happened` completes "worker <id> ..." in the reason, e.g. "was killed by SIGKILL".
    """
    forget_worker(registry, worker_id)
    return WorkerRecovery(
        jobs=recover_worker_jobs(registry, worker_id, what_happened),
        deployments=recover_worker_deployments(registry, worker_id, what_happened),
    )
