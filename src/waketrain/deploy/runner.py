"""Deployments run by a worker, in a lane beside its training jobs, or by the CLI in place."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from functools import partial

import structlog

from waketrain.deploy.service import (
    DeploymentRecord,
    claim_next_deployment,
    fail_deployment,
    heartbeat_deployment,
    recover_stale_deployments,
    run_deployment,
    start_deployment,
)
from waketrain.jobs.heartbeat import Heartbeat, worker_identity
from waketrain.store.registry import Registry

log = structlog.get_logger(__name__)


def run_claimed(
    registry: Registry,
    record: DeploymentRecord,
    worker_id: str,
    heartbeat_seconds: float,
    on_log: Callable[[str], None] | None = None,
) -> DeploymentRecord:
    """Run a deployment this worker holds to its end, beating its heartbeat meanwhile."""
    beat_once = partial(heartbeat_deployment, registry, record.id, worker_id)
    with Heartbeat(beat_once, heartbeat_seconds):
        try:
            # asking the database, not the last beat: a cancel counts up to the last moment
            return run_deployment(registry, record.id, on_log, should_cancel=beat_once)
        except Exception as exc:
            log.error("deployment crashed", error=traceback.format_exc())
            return fail_deployment(registry, record.id, f"{type(exc).__name__}: {exc}")


def deploy_here(
    registry: Registry,
    job_id: str | None,
    actor: str,
    artifact_path: str | None = None,
    on_log: Callable[[str], None] | None = None,
    board_id: str | None = None,
) -> DeploymentRecord:
    """Queue a deployment claimed by this process and run it here (`waketrain deploy`).

    Listed in the UI like the API's, cancellable there until the board applies it.
    """
    worker_id = worker_identity()
    started = start_deployment(
        registry, job_id, actor, artifact_path, claim_for=worker_id, board_id=board_id
    )
    if on_log is not None:
        on_log(f"deployment {started.id}")
    try:
        return run_claimed(
            registry, started, worker_id, registry.settings.heartbeat_seconds, on_log
        )
    except KeyboardInterrupt:  # Ctrl-C: ended here, not left for a worker to run again
        fail_deployment(
            registry, started.id, "interrupted (Ctrl-C); the board may hold either release"
        )
        raise


def deploy_lane(
    registry: Registry,
    worker_id: str,
    stop: threading.Event,
    heartbeat_seconds: float,
    stale_after_seconds: float,
    poll_seconds: float,
) -> None:
    """Recover, claim and run deployments until `stop`: a thread of the worker process, so a
    deployment never waits for a training job, and none is lost when the API restarts."""
    last_recovery = 0.0
    while not stop.is_set():
        if time.monotonic() - last_recovery > stale_after_seconds / 2:
            for row in recover_stale_deployments(registry, stale_after_seconds):
                log.warning("recovered stale deployment", deployment_id=row.id, status=row.status)
            last_recovery = time.monotonic()
        claimed = claim_next_deployment(registry, worker_id)
        if claimed is None:
            stop.wait(poll_seconds)
            continue
        with structlog.contextvars.bound_contextvars(deployment_id=claimed.id):
            log.info("deployment claimed", run=claimed.runs)
            finished = run_claimed(registry, claimed, worker_id, heartbeat_seconds)
            log.info("deployment finished", status=finished.status)
