"""The embedded worker of `waketrain serve`: restarted when it dies, its work handed back now."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from functools import partial

import structlog

from waketrain.jobs.heartbeat import worker_identity
from waketrain.jobs.liveness import recover_worker
from waketrain.processes import die_with_parent
from waketrain.store.registry import Registry

log = structlog.get_logger(__name__)


def describe_exit(returncode: int) -> str:
    """How a process ended, after "worker <id>": "was killed by SIGKILL", "exited with status 1"."""
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


class WorkerSupervisor:
    """Runs `command` (a `waketrain worker`) and starts it again whenever it exits.

    A worker that dies (kill -9, OOM) leaves its job to the stale-heartbeat window; the
    supervisor saw it die, so it recovers what that worker held at once. Restarts back off
    (1 s, 2 s, 4 s ... up to `max_backoff_seconds`) while the worker keeps dying young, so a
    worker that cannot start does not spin; one that ran `steady_seconds` starts over at 1 s.
    """

    def __init__(
        self,
        registry: Registry,
        command: Sequence[str],
        min_backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        steady_seconds: float = 120.0,
    ) -> None:
        self._registry = registry
        self._command = list(command)
        self._min_backoff = min_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._steady = steady_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a stop never misses a worker being started
        self._process: subprocess.Popen[bytes] | None = None
        # The thread that starts the worker lives as long as it does (see die_with_parent).
        self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60) -> None:
        """Terminate the worker and hand back what it held; no restart."""
        with self._lock:
            self._stop.set()
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = self._min_backoff
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                process = self._process = subprocess.Popen(
                    self._command, preexec_fn=partial(die_with_parent, os.getpid())
                )
            started = time.monotonic()
            returncode = process.wait()
            if time.monotonic() - started >= self._steady:
                backoff = self._min_backoff  # it ran a while: a new failure, not a crash loop
            worker_id, how = worker_identity(process.pid), describe_exit(returncode)
            if not self._stop.is_set():
                log.error("worker died", worker_id=worker_id, exit=how, restart_in_seconds=backoff)
            self._recover(worker_id, how)
            if self._stop.wait(backoff):
                return
            backoff = min(2 * backoff, self._max_backoff)

    def _recover(self, worker_id: str, how: str) -> None:
        try:
            recovered = recover_worker(self._registry, worker_id, how)
        except Exception:  # the database is unreachable: stale recovery catches up later
            log.exception("recovering a dead worker's work failed", worker_id=worker_id)
            return
        if recovered.jobs or recovered.deployments:
            log.warning(
                "recovered a dead worker's work",
                worker_id=worker_id,
                jobs={job.id: job.status for job in recovered.jobs},
                deployments={row.id: row.status for row in recovered.deployments},
            )
