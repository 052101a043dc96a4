"""Per-user and per-address request budgets: token buckets kept in the API process."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from waketrain.store.errors import RateLimited

MAX_KEYS = 10_000  # buckets kept; the fullest (idle longest) go first beyond this


class RateLimiter:
    """`per_minute` events per key, in bursts of up to `per_minute`; 0 turns it off."""

    def __init__(
        self, what: str, per_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what = what
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60)

    def check(self, key: str) -> None:
        """Raises RateLimited, saying when to retry, if `key` has no budget left now."""
        if self.per_minute <= 0:
            return
        with self._lock:
            now = self._clock()
            if self._tokens(key, now) < 1:
                wait = math.ceil((1 - self._tokens(key, now)) * 60 / self.per_minute)
                raise RateLimited(
                    f"Too many {self.what}: at most {self.per_minute} a minute. "
                    f"Try again in {wait} s.",
                    retry_after_seconds=wait,
                )

    def spend(self, key: str) -> None:
        """Counts one event for `key` (after check, or on its own for failures)."""
        if self.per_minute <= 0:
            return
        with self._lock:
            now = self._clock()
            self._buckets[key] = (self._tokens(key, now) - 1, now)
            if len(self._buckets) > MAX_KEYS:
                # Full buckets hold no information: forget those first.
                for stale in [k for k in self._buckets if self._tokens(k, now) >= self.per_minute]:
                    del self._buckets[stale]
