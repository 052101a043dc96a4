"""The job queue: submit, claim atomically, heartbeat, recover, cancel, finish, bless."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import CursorResult, Select, select, update

from waketrain.store.artifacts import record_current
from waketrain.store.db import skip_rows_held_elsewhere
from waketrain.store.errors import Conflict, InvalidInput, NotFound
from waketrain.store.events import record_audit, record_event
from waketrain.store.files import file_lock
from waketrain.store.gate import dataset_gate
from waketrain.store.health import require_dataset
from waketrain.store.models import Job, utcnow
from waketrain.store.projections import write_projections
from waketrain.store.registry import Registry
from waketrain.training.config import TrainConfig, apply_overrides

MAX_ATTEMPTS = 2  # a job whose worker died is requeued once, then failed
FINAL = ("succeeded", "failed", "cancelled")
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    dataset_id: str
    status: str
    stage: str | None
    progress: float
    eta_seconds: float | None
    config: dict[str, Any]
    init_from: str | None
    worker_id: str | None
    heartbeat_at: datetime | None
    attempt: int
    cancel_requested: bool
    error: str | None
    metrics: dict[str, Any] | None
    export_dir: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _job_event(session: Any, job: Job, type_: str, **extra: Any) -> None:
    payload = {
        "job_id": job.id,
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        **extra,
    }
    record_event(session, type_, payload, dataset_id=job.dataset_id)


def submit_job(
    registry: Registry,
    dataset_id: str,
    overrides: dict[str, object],
    actor: str,
    init_from: str | None = None,
    claim_for: str | None = None,
) -> JobRecord:
    """Queue a job; refuses at once a dataset below the minimum or a bad config.

    With `claim_for` the job starts out running for that worker (`waketrain train` runs
    its job itself), so no other worker can take it in between.
    """
    config = apply_overrides(TrainConfig.service_defaults(registry.settings), overrides)
    require_dataset(registry, dataset_id)
    blockers = dataset_gate(registry, dataset_id).blockers(
        config.min_positive_clips, config.min_negative_clips
    )
    if blockers:
        raise InvalidInput(f"Dataset {dataset_id!r} cannot train yet: {' '.join(blockers)}")
    if init_from is not None:
        _require_warm_start_source(registry, init_from)
    job = Job(
        id=str(uuid.uuid4()),
        dataset_id=dataset_id,
        status="queued",
        progress=0.0,
        config=config.model_dump(mode="json"),
        init_from=init_from,
        attempt=0,
        cancel_requested=False,
        created_by=actor,
    )
    with registry.sessions.begin() as session:
        session.add(job)
        _job_event(session, job, "job.queued")
        record_audit(session, actor, "train", "job", job.id, {"dataset_id": dataset_id})
        if claim_for is not None:
            session.flush()
            for column, value in _claimed(claim_for).items():
                setattr(job, column, value)
            job.attempt += 1
            _job_event(session, job, "job.started", worker_id=claim_for, attempt=job.attempt)
    return _projected(registry, JobRecord.model_validate(job))


def _projected(registry: Registry, job: JobRecord) -> JobRecord:
    """Rewrite the dataset's metrics.json (its `last_job`) after a job's status changed."""
    write_projections(registry, job.dataset_id)
    return job


def _claimed(worker_id: str) -> dict[str, Any]:
    """What claiming a job sets, besides one more attempt."""
    now = utcnow()
    return {
        "status": "running",
        "worker_id": worker_id,
        "heartbeat_at": now,
        "started_at": now,
        "stage": "data_prep",
        "progress": 0.0,
    }


def _require_warm_start_source(registry: Registry, job_id: str) -> None:
    """A succeeded job, or a job folder with a checkpoint (a model trained by the library)."""
    try:
        source = get_job(registry, job_id)
    except NotFound:
        # No row, but trained by the library itself (a bench, a test): the checkpoint is enough.
        checkpoint = registry.layout.jobs / job_id / "checkpoints" / "best.pt"
        if _is_uuid(job_id) and checkpoint.exists():  # a UUID: safe in a path
            return
        raise
    if source.status != "succeeded":
        raise InvalidInput(f"Job {job_id} has not succeeded; warm start needs a finished job.")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def get_job(registry: Registry, job_id: str) -> JobRecord:
    if not _is_uuid(job_id):
        raise NotFound(f"No job {job_id!r}: job ids are UUIDs.")
    with registry.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"No job {job_id}.")
        return JobRecord.model_validate(job)


def list_jobs(
    registry: Registry,
    dataset_id: str | None = None,
    limit: int = 100,
    statuses: Sequence[str] | None = None,
) -> list[JobRecord]:
    """Newest first; `statuses` keeps only those (queued and running: what is under way)."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if dataset_id is not None:
        query = query.where(Job.dataset_id == dataset_id)
    if statuses:
        query = query.where(Job.status.in_(list(statuses)))
    with registry.sessions() as session:
        return [JobRecord.model_validate(job) for job in session.scalars(query)]


def claim_next_job(registry: Registry, worker_id: str) -> JobRecord | None:
    """Take the oldest queued job; one conditional UPDATE makes sure only one worker gets it."""
    with registry.sessions.begin() as session:
        candidates = select(Job.id).where(Job.status == "queued").order_by(Job.created_at)
        job_id = session.scalars(skip_rows_held_elsewhere(candidates.limit(1), session)).first()
        if job_id is None:
            return None
        claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(**_claimed(worker_id), attempt=Job.attempt + 1)
        )
        if claimed.rowcount != 1:
            return None  # another worker was faster
        job = session.get(Job, job_id)
        assert job is not None
        session.refresh(job)
        _job_event(session, job, "job.started", worker_id=worker_id, attempt=job.attempt)
        record = JobRecord.model_validate(job)
    return _projected(registry, record)


def heartbeat(registry: Registry, job_id: str, worker_id: str) -> bool:
    """Refresh the heartbeat; returns whether the operator asked to cancel."""
    with registry.sessions.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
            .values(heartbeat_at=utcnow())
        )
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def record_progress(
    registry: Registry,
    job_id: str,
    stage: str,
    progress: float,
    message: str,
    eta_seconds: float | None,
    metrics: dict[str, Any],
) -> None:
    with registry.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != "running":
            return
        job.stage, job.progress, job.heartbeat_at = stage, progress, utcnow()
        if eta_seconds is not None:
            job.eta_seconds = eta_seconds
        _job_event(
            session, job, "job.progress", message=message, eta_seconds=eta_seconds, metrics=metrics
        )


def finish_job(
    registry: Registry,
    job_id: str,
    status: str,
    error: str | None = None,
    metrics: dict[str, Any] | None = None,
    export_dir: str | None = None,
) -> JobRecord:
    if status not in FINAL:
        raise ValueError(f"not a final status: {status}")
    with registry.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"No job {job_id}.")
        job.status, job.error, job.finished_at = status, error, utcnow()
        job.metrics, job.export_dir = metrics, export_dir
        if status == "succeeded":
            job.progress, job.eta_seconds = 1.0, 0.0
        _job_event(session, job, f"job.{status}", error=error)
        record = JobRecord.model_validate(job)
    return _projected(registry, record)


def cancel_job(registry: Registry, job_id: str, actor: str) -> JobRecord:
    """A queued job is cancelled at once; a running one at its worker's next check."""
    get_job(registry, job_id)
    with registry.sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        if job.status in FINAL:
            raise Conflict(f"Job {job_id} already {job.status}; nothing to cancel.")
        if job.status == "queued":
            job.status, job.finished_at, job.error = "cancelled", utcnow(), f"cancelled by {actor}"
            _job_event(session, job, "job.cancelled", error=job.error)
        else:
            job.cancel_requested = True
            _job_event(session, job, "job.cancel_requested", actor=actor)
        record_audit(session, actor, "cancel", "job", job_id)
        record = JobRecord.model_validate(job)
    return _projected(registry, record)


def recover_stale_jobs(registry: Registry, stale_after_seconds: float) -> list[JobRecord]:
    """Running jobs whose worker stopped beating: requeued once, then failed with the reason."""
    cutoff = utcnow() - timedelta(seconds=stale_after_seconds)
    stale = select(Job).where(Job.status == "running", Job.heartbeat_at < cutoff)
    return _recover_jobs(registry, stale, "stopped sending heartbeats")


def recover_worker_jobs(registry: Registry, worker_id: str, what_happened: str) -> list[JobRecord]:
    """The running job of a worker known to be gone: recovered at once, as if stale."""
    held = select(Job).where(Job.status == "running", Job.worker_id == worker_id)
    return _recover_jobs(registry, held, what_happened)


def _recover_jobs(registry: Registry, orphaned: Select[Job], what_happened: str) -> list[JobRecord]:
    """Requeue each job once, then fail it (or cancel it, if asked), saying what happened."""
    recovered = []
    with registry.sessions.begin() as session:
        for job in session.scalars(skip_rows_held_elsewhere(orphaned, session)).all():
            lost = f"worker {job.worker_id} {what_happened} (attempt {job.attempt})"
            if job.attempt < MAX_ATTEMPTS and not job.cancel_requested:
                job.status, job.worker_id, job.stage, job.progress = "queued", None, None, 0.0
                _job_event(session, job, "job.requeued", reason=lost)
            else:
                job.status, job.finished_at = "failed", utcnow()
                job.error = f"{lost}; not retried again" if not job.cancel_requested else lost
                if job.cancel_requested:
                    job.status = "cancelled"
                _job_event(session, job, f"job.{job.status}", error=job.error)
            recovered.append(JobRecord.model_validate(job))
    for dataset_id in {job.dataset_id for job in recovered}:
        write_projections(registry, dataset_id)
    return recovered


def bless_job(registry: Registry, job_id: str, actor: str) -> JobRecord:
    """Point models/current at this job's export, atomically (new symlink, then rename)."""
    job = get_job(registry, job_id)
    if job.status != "succeeded" or not job.export_dir:
        raise Conflict(f"Job {job_id} is {job.status}; only a succeeded job can be current.")
    models = registry.layout.models
    with file_lock(registry.layout.locks / "models-current.lock"):
        tmp = models / f".current-{uuid.uuid4().hex}"
        os.symlink(os.path.relpath(registry.layout.root / job.export_dir, models), tmp)
        os.replace(tmp, models / "current")
        record_current(registry, job_id)
    with registry.sessions.begin() as session:
        record_event(
            session, "model.blessed", {"job_id": job_id, "actor": actor}, dataset_id=job.dataset_id
        )
        record_audit(session, actor, "bless", "job", job_id)
    return job


def current_job_id(registry: Registry) -> str | None:
    """The job whose export models/current points at, if any."""
    link = registry.layout.models / "current"
    if not link.is_symlink():
        return None
    return link.resolve().parent.name
