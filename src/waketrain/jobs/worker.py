"""The training worker: claims queued jobs and runs them one at a time, beating a heartbeat."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import structlog

from waketrain.deploy.runner import deploy_lane
from waketrain.jobs import queue
from waketrain.jobs.heartbeat import Heartbeat, worker_identity
from waketrain.jobs.liveness import forget_stale_workers, forget_worker, mark_worker_alive
from waketrain.jobs.telemetry import gpu_telemetry
from waketrain.runtime.model_card import CARD_FILE
from waketrain.store.errors import WaketrainError
from waketrain.store.garbage import collect_garbage
from waketrain.store.registry import Registry
from waketrain.training.config import TrainConfig
from waketrain.training.pipeline import JobCancelled, ProgressUpdate, resolve_device, train

log = structlog.get_logger(__name__)
REQUIRED_EXPORTS = ("wake_model.onnx", CARD_FILE, "checkpoint.pt")


@dataclass(frozen=True)
class WorkerOptions:
    heartbeat_seconds: float = 2.0
    stale_after_seconds: float = 30.0
    poll_seconds: float = 1.0
    auto_bless: bool = True
    gc_interval_hours: float = 0.0  # 0: no clean-up (the CLI passes the setting)
    noise_dirs: tuple[Path, ...] = ()
    rir_dirs: tuple[Path, ...] = ()
    eval_negative_dirs: tuple[Path, ...] = ()


def run_job(
    registry: Registry,
    job: queue.JobRecord,
    worker_id: str,
    options: WorkerOptions,
    echo: Callable[[ProgressUpdate], None] | None = None,
) -> str:
    """Run one claimed job to a final status; returns it. `echo` sees each progress update."""
    config = TrainConfig.model_validate(job.config)
    device_type = resolve_device(config.device).type
    last_telemetry = 0.0

    def on_progress(update: ProgressUpdate) -> None:
        nonlocal last_telemetry
        if echo is not None:
            echo(update)
        metrics = dict(update.metrics)
        if time.monotonic() - last_telemetry > 5 or update.stage != "training":
            metrics["gpu"] = gpu_telemetry(device_type)
            last_telemetry = time.monotonic()
        queue.record_progress(
            registry,
            job.id,
            update.stage,
            update.progress,
            update.message,
            metrics.get("eta_seconds"),
            metrics,
        )

    beat_once = partial(queue.heartbeat, registry, job.id, worker_id)
    with Heartbeat(beat_once, options.heartbeat_seconds) as beat:
        try:
            result = train(
                registry,
                job.dataset_id,
                config,
                on_progress,
                job_id=job.id,
                init_from=job.init_from,
                noise_dirs=options.noise_dirs,
                rir_dirs=options.rir_dirs,
                eval_negative_dirs=options.eval_negative_dirs,
                should_cancel=beat.cancelled.is_set,
            )
        except JobCancelled as exc:
            queue.finish_job(registry, job.id, "cancelled", error=str(exc))
            return "cancelled"
        except WaketrainError as exc:
            queue.finish_job(registry, job.id, "failed", error=str(exc))
            return "failed"
        except Exception as exc:
            log.error("job crashed", job_id=job.id, error=traceback.format_exc())
            queue.finish_job(registry, job.id, "failed", error=f"{type(exc).__name__}: {exc}")
            return "failed"
    missing = [name for name in REQUIRED_EXPORTS if not (result.export_dir / name).exists()]
    if missing:
        queue.finish_job(registry, job.id, "failed", error=f"export incomplete: {missing} missing")
        return "failed"
    export_dir = str(result.export_dir.relative_to(registry.layout.root))
    card = result.card
    summary = card.metrics.model_dump(
        mode="json",
        include={"frr", "fa_per_hour", "auc", "accuracy", "negative_hours", "false_accepts",
                 "fa_per_hour_upper", "hours_to_decide", "calibration_hours",
                 "missed_positives", "threshold_log_odds"},
    ) | card.model_dump(
        mode="json",
        include={"threshold", "target_met", "model_id", "timings_seconds", "comparison",
                 "backend", "stream_cost"},
    )  # fmt: skip
    comparison = card.comparison
    summary["not_better_than_current"] = bool(comparison and not comparison.at_least_as_good)
    queue.finish_job(registry, job.id, "succeeded", metrics=summary, export_dir=export_dir)
    if options.auto_bless and not summary["not_better_than_current"]:
        queue.bless_job(registry, job.id, actor=worker_id)
    return "succeeded"


def train_here(
    registry: Registry,
    dataset_id: str,
    overrides: dict[str, object],
    actor: str,
    options: WorkerOptions,
    init_from: str | None = None,
    echo: Callable[[ProgressUpdate], None] | None = None,
) -> queue.JobRecord:
    """Submit a job claimed by this process and run it here (`waketrain train`).

    It is a job like the API's: listed in the UI with its progress, cancellable there, and
    made current when auto-bless is on. Returns the finished job.
    """
    worker_id = worker_identity()
    job = queue.submit_job(registry, dataset_id, overrides, actor, init_from, claim_for=worker_id)
    with structlog.contextvars.bound_contextvars(job_id=job.id):
        try:
            run_job(registry, job, worker_id, options, echo)
        except KeyboardInterrupt:  # Ctrl-C: cancelled, not left for stale recovery to requeue
            queue.finish_job(registry, job.id, "cancelled", error="interrupted (Ctrl-C)")
            raise
    return queue.get_job(registry, job.id)


def _collect_garbage_now(registry: Registry) -> None:
    """Scheduled clean-up; a failure is logged and retried at the next interval, never fatal."""
    try:
        report = collect_garbage(registry)
    except Exception:
        log.exception("garbage collection failed")
        return
    log.info("garbage collected", files=report.files, bytes_freed=report.bytes_freed,
             expired_captures=report.expired_captures)  # fmt: skip


def run_worker(
    registry: Registry,
    options: WorkerOptions,
    stop: threading.Event | None = None,
    max_jobs: int | None = None,
) -> int:
    """Recover stale jobs, then claim and run jobs until `stop` or `max_jobs`; returns the count.

    Deployments run in a lane of their own beside the training jobs (see deploy.runner). The
    worker beats its own row meanwhile, so /healthz knows a worker is alive.
    """
    stop = stop or threading.Event()
    worker_id = worker_identity()
    mark_worker_alive(registry, worker_id)
    log.info("worker started", worker_id=worker_id)
    lane_stop = threading.Event()
    lane = threading.Thread(
        target=deploy_lane,
        args=(registry, worker_id, lane_stop, options.heartbeat_seconds,
              options.stale_after_seconds, options.poll_seconds),
        name="deploy-lane",
        daemon=True,
    )  # fmt: skip
    lane.start()
    try:
        with Heartbeat(partial(mark_worker_alive, registry, worker_id), options.heartbeat_seconds):
            return _run_training_jobs(registry, options, worker_id, stop, max_jobs)
    finally:
        lane_stop.set()
        lane.join()
        forget_worker(registry, worker_id)


def _run_training_jobs(
    registry: Registry,
    options: WorkerOptions,
    worker_id: str,
    stop: threading.Event,
    max_jobs: int | None,
) -> int:
    done = 0
    last_recovery = 0.0
    last_gc: float | None = None
    while not stop.is_set() and (max_jobs is None or done < max_jobs):
        # Between jobs, and at start: a worker restarted daily would otherwise never reach it.
        gc_every = options.gc_interval_hours * 3600
        if gc_every > 0 and (last_gc is None or time.monotonic() - last_gc >= gc_every):
            _collect_garbage_now(registry)
            last_gc = time.monotonic()
        if time.monotonic() - last_recovery > options.stale_after_seconds / 2:
            for job in queue.recover_stale_jobs(registry, options.stale_after_seconds):
                log.warning("recovered stale job", job_id=job.id, status=job.status)
            forget_stale_workers(registry, options.stale_after_seconds)
            last_recovery = time.monotonic()
        claimed = queue.claim_next_job(registry, worker_id)
        if claimed is None:
            stop.wait(options.poll_seconds)
            continue
        # Every log line of the job (the pipeline's too) carries its id.
        with structlog.contextvars.bound_contextvars(job_id=claimed.id):
            log.info("job claimed", attempt=claimed.attempt)
            status = run_job(registry, claimed, worker_id, options)
            log.info("job finished", status=status)
        done += 1
    return done
