"""A heartbeat in the background for the job a worker runs, training or deployment."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


def worker_identity(pid: int | None = None) -> str:
    """This process (or child `pid`), as the database names the worker holding a job: host:pid."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


class Heartbeat:
    """Calls `beat` every `every` seconds; remembers when it answers True (a cancel was asked)."""

    def __init__(self, beat: Callable[[], bool | None], every: float) -> None:
        self.cancelled = threading.Event()
        self._beat = beat
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if self._beat():
                    self.cancelled.set()
            except Exception:  # a busy database must not kill the job; the next beat retries
                log.exception("heartbeat failed")
