"""Deployments: queue one (refused while another runs to the same board), run it, record it.

The one core behind `waketrain deploy` and `POST /deploy`. A deployment is a job like a
training job: the API only queues it; a worker claims it (one conditional UPDATE), keeps it
alive with a heartbeat, honours a cancel until the board starts applying, and a deployment
whose worker died is run once more by the next worker (the board's apply is safe to repeat).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import CursorResult, Select, or_, select, update
from sqlalchemy.orm import Session

from waketrain.deploy.boards import ENV_BOARD_ID, board_target
from waketrain.deploy.bundle import build_bundle, load_bundle
from waketrain.deploy.ssh import APPLIED, REFUSED, ROLLED_BACK, DeployFailed, ship
from waketrain.jobs.queue import current_job_id, get_job
from waketrain.store.db import skip_rows_held_elsewhere
from waketrain.store.errors import Conflict, InvalidInput, NotFound
from waketrain.store.events import record_audit, record_event
from waketrain.store.files import file_lock
from waketrain.store.models import ACTIVE_DEPLOYMENT_STATUSES, Deployment, utcnow
from waketrain.store.registry import Registry

DeploymentStatus = Literal[
    "pending", "transferring", "applying", "succeeded", "rolled_back", "failed", "cancelled"
]
MAX_RUNS = 2  # a deployment whose worker died is run once more, then failed


class DeployCancelled(Exception):
    """The operator cancelled the deployment before the board applied it."""


class DeploymentRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    job_id: str
    dataset_id: str
    target: str
    status: str
    attempts: int
    bundle: str | None
    log: str
    remote_stdout: str | None
    remote_stderr: str | None
    error: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    worker_id: str | None = None
    runs: int = 0
    cancel_requested: bool = False
    board_id: str | None = None


class DeployTarget(BaseModel):
    configured: bool
    target: str | None
    reason: str | None
    board_id: str | None = Field(default=None, description="The default board's id.")


def describe_target(registry: Registry) -> DeployTarget:
    """Where a deploy goes by default, or why it cannot go anywhere yet."""
    try:
        target, board_id = board_target(registry)
    except InvalidInput as exc:
        return DeployTarget(configured=False, target=None, reason=str(exc))
    return DeployTarget(
        configured=True, target=target.describe(), reason=None, board_id=board_id or ENV_BOARD_ID
    )


def start_deployment(
    registry: Registry,
    job_id: str | None,
    actor: str,
    artifact_path: str | None = None,
    claim_for: str | None = None,
    board_id: str | None = None,
) -> DeploymentRecord:
    """Queue a deployment of a job's model (default: the current model) to a board (default:
    the default board).

    `artifact_path` (relative to the data dir) names a job's export folder, or a bundle in
    transfers/ to ship again as it is. `claim_for`: a worker id that runs it at once (the
    CLI's own process), so no other worker takes it.
    """
    target, stored_board_id = board_target(registry, board_id)
    if job_id and artifact_path:
        raise InvalidInput("Give either job_id or artifact_path, not both.")
    bundle_name = None
    if artifact_path:
        job_id, bundle_name = _resolve_artifact(registry, artifact_path)
    job_id = job_id or current_job_id(registry)
    if job_id is None:
        raise InvalidInput("There is no current model to deploy; name a job.")
    job = get_job(registry, job_id)
    if job.status != "succeeded":
        raise InvalidInput(f"Job {job_id} is {job.status}; only a succeeded job can be deployed.")
    if target.profile == "tars-compose" and job.config.get("backend") != "oww_head":
        raise InvalidInput(
            "The tars-compose target runs openWakeWord heads only; train with backend=oww_head "
            "or deploy to a board whose profile is detector."
        )
    with file_lock(registry.layout.locks / "deploy.lock"), registry.sessions.begin() as session:
        running = session.scalar(
            select(Deployment).where(
                Deployment.target == target.describe(),
                Deployment.status.in_(ACTIVE_DEPLOYMENT_STATUSES),
            )
        )
        if running is not None:
            raise Conflict(
                f"Deployment {running.id} to {target.describe()} is still {running.status}; "
                "wait for it to finish."
            )
        row = Deployment(
            id=str(uuid.uuid4()),
            job_id=job.id,
            dataset_id=job.dataset_id,
            target=target.describe(),
            status="pending",
            attempts=0,
            bundle=bundle_name,
            log="",
            created_by=actor,
            worker_id=claim_for,
            heartbeat_at=utcnow() if claim_for else None,
            runs=1 if claim_for else 0,
            cancel_requested=False,
            board_id=stored_board_id,
        )
        session.add(row)
        session.flush()  # fills in the defaults (created_at) the record shows
        _event(session, row)
        record_audit(session, actor, "deploy", "job", job.id, {"deployment_id": row.id})
        return DeploymentRecord.model_validate(row)


def run_deployment(
    registry: Registry,
    deployment_id: str,
    on_log: Callable[[str], None] | None = None,
    should_cancel: Callable[[], bool] = lambda: False,
) -> DeploymentRecord:
    """Bundle, ship and apply; every step lands in the record and the event feed.

    `should_cancel` is asked before the upload and once it is done, before the board
    applies it: from then on the board's script finishes or rolls back on its own.
    """
    record = get_deployment(registry, deployment_id)

    def log(line: str) -> None:
        _update(registry, deployment_id, append_log=line)
        if on_log is not None:
            on_log(line)

    def check_cancel() -> None:
        if should_cancel():
            raise DeployCancelled

    def uploaded() -> None:
        check_cancel()
        _update(registry, deployment_id, status="applying")

    try:
        target, _ = board_target(registry, record.board_id or ENV_BOARD_ID)
        check_cancel()
        _update(registry, deployment_id, status="transferring")
        if record.bundle:  # shipping an earlier bundle again
            bundle, _ = load_bundle(registry.layout.transfers / record.bundle)
        else:
            bundle = build_bundle(registry, record.job_id)
            _update(registry, deployment_id, bundle=str(bundle.path.name))
        log(f"bundle {bundle.path.name} sha256 {bundle.sha256}")
        check_cancel()
        remote = asyncio.run(
            ship(
                bundle,
                target,
                log,
                attempts=registry.settings.deploy_attempts,
                on_uploaded=uploaded,
            )
        )
    except DeployCancelled:
        log("cancelled before the board applied it; the board keeps its current model")
        return _update(registry, deployment_id, status="cancelled", error="cancelled", final=True)
    except (DeployFailed, InvalidInput, NotFound, OSError) as exc:
        log(f"failed: {exc}")
        return _update(registry, deployment_id, status="failed", error=str(exc), final=True)
    for line in (remote.stdout + remote.stderr).splitlines():
        log(f"board: {line}")
    if remote.exit_status == APPLIED:
        status, error = "succeeded", None
    elif remote.exit_status == ROLLED_BACK:
        status, error = "rolled_back", _last_line(remote.stderr)
    else:
        status = "failed"
        error = _last_line(remote.stderr) or f"the apply script exited {remote.exit_status}"
        if remote.exit_status != REFUSED:
            error += " (the rollback did not complete: check the board)"
    log(status + (f": {error}" if error else ""))
    return _update(
        registry,
        deployment_id,
        status=status,
        error=error,
        attempts=remote.attempts,
        remote_stdout=remote.stdout,
        remote_stderr=remote.stderr,
        final=True,
    )


def _resolve_artifact(registry: Registry, artifact_path: str) -> tuple[str, str | None]:
    """(job id, bundle name or None) for an export folder or a bundle inside the registry."""
    root = registry.layout.root.resolve()
    path = (root / artifact_path).resolve()
    accepted = "Accepted: jobs/<job_id>/export, or transfers/<bundle>.tar.gz."
    if not path.is_relative_to(root) or not path.exists():
        raise InvalidInput(f"No artifact {artifact_path!r} in the registry. {accepted}")
    if path.is_dir() and path.parent.parent == root / "jobs" and path.name == "export":
        return path.parent.name, None
    if path.parent == registry.layout.transfers.resolve():
        _, job_id = load_bundle(path)
        return job_id, path.name
    raise InvalidInput(f"{artifact_path!r} is not a deployable artifact. {accepted}")


def get_deployment(registry: Registry, deployment_id: str) -> DeploymentRecord:
    with registry.sessions() as session:
        row = session.get(Deployment, deployment_id)
        if row is None:
            raise NotFound(f"No deployment {deployment_id!r}.")
        return DeploymentRecord.model_validate(row)


def list_deployments(
    registry: Registry, limit: int = 50, statuses: Sequence[str] | None = None
) -> list[DeploymentRecord]:
    """Newest first; `statuses` keeps only those (ACTIVE_DEPLOYMENT_STATUSES: what is under way)."""
    query = select(Deployment).order_by(Deployment.created_at.desc()).limit(limit)
    if statuses:
        query = query.where(Deployment.status.in_(list(statuses)))
    with registry.sessions() as session:
        return [DeploymentRecord.model_validate(row) for row in session.scalars(query)]


def claim_next_deployment(registry: Registry, worker_id: str) -> DeploymentRecord | None:
    """Take the oldest queued deployment; one conditional UPDATE gives it to one worker."""
    waiting = (Deployment.status == "pending", Deployment.worker_id.is_(None))
    with registry.sessions.begin() as session:
        candidates = select(Deployment.id).where(*waiting).order_by(Deployment.created_at)
        deployment_id = session.scalars(
            skip_rows_held_elsewhere(candidates.limit(1), session)
        ).first()
        if deployment_id is None:
            return None
        claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Deployment)
            .where(Deployment.id == deployment_id, *waiting)
            .values(worker_id=worker_id, heartbeat_at=utcnow(), runs=Deployment.runs + 1)
        )
        if claimed.rowcount != 1:
            return None  # another worker was faster
        row = session.get(Deployment, deployment_id)
        assert row is not None
        session.refresh(row)
        row.log += f"run {row.runs} by worker {worker_id}\n"
        return DeploymentRecord.model_validate(row)


def heartbeat_deployment(registry: Registry, deployment_id: str, worker_id: str) -> bool:
    """Refresh the heartbeat; returns whether the operator asked to cancel."""
    with registry.sessions.begin() as session:
        session.execute(
            update(Deployment)
            .where(
                Deployment.id == deployment_id,
                Deployment.worker_id == worker_id,
                Deployment.status.in_(ACTIVE_DEPLOYMENT_STATUSES),
            )
            .values(heartbeat_at=utcnow())
        )
        return bool(
            session.scalar(
                select(Deployment.cancel_requested).where(Deployment.id == deployment_id)
            )
        )


def cancel_deployment(registry: Registry, deployment_id: str, actor: str) -> DeploymentRecord:
    """A queued deployment is cancelled at once; a running one before the board applies it."""
    get_deployment(registry, deployment_id)
    with registry.sessions.begin() as session:
        row = session.get(Deployment, deployment_id, with_for_update=True)
        assert row is not None
        if row.status not in ACTIVE_DEPLOYMENT_STATUSES:
            raise Conflict(f"Deployment {deployment_id} already {row.status}; nothing to cancel.")
        if row.status == "applying":
            raise Conflict(
                f"Deployment {deployment_id} is being applied on the board; it finishes or "
                "rolls back on its own."
            )
        if row.status == "pending" and row.worker_id is None:
            row.status, row.finished_at, row.error = "cancelled", utcnow(), f"cancelled by {actor}"
            row.log += f"cancelled by {actor} before a worker took it\n"
            _event(session, row)
        else:
            row.cancel_requested = True
            row.log += f"cancel asked by {actor}\n"
            record_event(
                session,
                "deployment.cancel_requested",
                {"deployment_id": row.id, "actor": actor},
                dataset_id=row.dataset_id,
            )
        record_audit(session, actor, "cancel", "deployment", deployment_id)
        return DeploymentRecord.model_validate(row)


def recover_stale_deployments(
    registry: Registry, stale_after_seconds: float
) -> list[DeploymentRecord]:
    """Deployments whose worker stopped beating: run once more, then failed with the reason.

    A stopped API loses nothing: the deployment is a row, and the next worker takes it up.
    Rows without a heartbeat are from a service that ran deployments in its own process.
    """
    cutoff = utcnow() - timedelta(seconds=stale_after_seconds)
    stale = select(Deployment).where(
        Deployment.status.in_(ACTIVE_DEPLOYMENT_STATUSES),
        or_(Deployment.status != "pending", Deployment.worker_id.is_not(None)),
        or_(Deployment.heartbeat_at.is_(None), Deployment.heartbeat_at < cutoff),
    )
    return _recover_deployments(registry, stale, "stopped")


def recover_worker_deployments(
    registry: Registry, worker_id: str, what_happened: str
) -> list[DeploymentRecord]:
    """The deployment a worker known to be gone was running: recovered at once, as if stale."""
    held = select(Deployment).where(
        Deployment.status.in_(ACTIVE_DEPLOYMENT_STATUSES), Deployment.worker_id == worker_id
    )
    return _recover_deployments(registry, held, what_happened)


def _recover_deployments(
    registry: Registry, orphaned: Select[Deployment], what_happened: str
) -> list[DeploymentRecord]:
    """Queue each deployment again once, then fail it (or cancel it, if asked), saying why."""
    recovered = []
    with registry.sessions.begin() as session:
        for row in session.scalars(skip_rows_held_elsewhere(orphaned, session)).all():
            lost = (
                f"worker {row.worker_id or 'in the service'} {what_happened} while {row.status} "
                f"(run {row.runs})"
            )
            if row.runs < MAX_RUNS and not row.cancel_requested:
                row.status, row.worker_id, row.heartbeat_at = "pending", None, None
                row.log += f"{lost}: queued again\n"
                _event(session, row)
            else:
                row.status = "cancelled" if row.cancel_requested else "failed"
                row.finished_at = utcnow()
                row.error = (
                    f"{lost}; not retried again: the board may hold the new release or the "
                    "previous one, deploy again"
                )
                row.log += row.error + "\n"
                _event(session, row)
            recovered.append(DeploymentRecord.model_validate(row))
    return recovered


def fail_deployment(registry: Registry, deployment_id: str, error: str) -> DeploymentRecord:
    """End a deployment that broke in an unexpected way, saying how."""
    return _update(
        registry, deployment_id, append_log=f"failed: {error}", status="failed", error=error,
        final=True,
    )  # fmt: skip


def _update(
    registry: Registry,
    deployment_id: str,
    append_log: str | None = None,
    final: bool = False,
    **fields: object,
) -> DeploymentRecord:
    with registry.sessions.begin() as session:
        row = session.get(Deployment, deployment_id)
        assert row is not None
        status_before = row.status
        for name, value in fields.items():
            setattr(row, name, value)
        if append_log is not None:
            row.log += append_log + "\n"
        if final:
            row.finished_at = utcnow()
        if row.status != status_before:
            _event(session, row)
        return DeploymentRecord.model_validate(row)


def _event(session: Session, row: Deployment) -> None:
    payload = {
        "deployment_id": row.id,
        "job_id": row.job_id,
        "status": row.status,
        "target": row.target,
        "error": row.error,
    }
    record_event(session, f"deployment.{row.status}", payload, dataset_id=row.dataset_id)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
