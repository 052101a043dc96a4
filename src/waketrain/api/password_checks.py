"""Password checks run a few at a time, so a burst of logins cannot exhaust memory or threads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from waketrain.store.errors import ServiceBusy

T = TypeVar("T")

# Each argon2 check takes 64 MiB and a core for a moment: two at once keep a small server
# responsive, and a queue of a few seconds' checks is all a person logging in needs to wait.
CHECKS_AT_ONCE = 2
CHECKS_WAITING = 16
RETRY_AFTER_SECONDS = 2


class PasswordChecks:
    """Runs password checks in threads, `at_once` at a time; refuses beyond `waiting` queued."""

    def __init__(self, at_once: int = CHECKS_AT_ONCE, waiting: int = CHECKS_WAITING) -> None:
        self._threads = anyio.CapacityLimiter(at_once)
        self._most_admitted = at_once + waiting
        self._admitted = 0  # only touched on the event loop: no lock needed

    async def run(self, check: Callable[..., T], *args: Any) -> T:
        """`check(*args)` in a worker thread, once a slot is free; ServiceBusy if too many wait."""
        if self._admitted >= self._most_admitted:
            raise ServiceBusy(
                "The server is checking too many passwords at once. "
                f"Try again in {RETRY_AFTER_SECONDS} s.",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        self._admitted += 1
        try:
            return await anyio.to_thread.run_sync(check, *args, limiter=self._threads)
        finally:
            self._admitted -= 1
