"""Per-user and per-address request budgets: token buckets kept in the API process."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from waketrain.store.errors import RateLimited

MAX_KEYS = 10_000  # buckets kept; the fullest (idle longest) go first beyond this


class RateLimiter:
    """`limit` events per key in any `window_seconds`, in bursts of up to `limit`; 0 turns it off.

    A bucket refills continuously and never goes below empty, so a key that is refused may try
    again after `window_seconds / limit` at most, however hard it was pushed before.
    """

    def __init__(
        self,
        what: str,
        limit: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.limit), now))
        return min(float(self.limit), tokens + (now - at) * self.limit / self.window_seconds)

    def take(self, key: str) -> None:
        """Spends one event for `key`, or raises RateLimited, saying when to retry, if none is
        left. Checked and spent under one lock, so a concurrent burst cannot pass together."""
        if self.limit <= 0:
            return
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens < 1:
                wait = math.ceil((1 - tokens) * self.window_seconds / self.limit)
                per = "a minute" if self.window_seconds == 60 else f"in {self.window_seconds:g} s"
                raise RateLimited(
                    f"Too many {self.what}: at most {self.limit} {per}. Try again in {wait} s.",
                    retry_after_seconds=wait,
                )
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > MAX_KEYS:
                # Full buckets hold no information: forget those first.
                for stale in [k for k in self._buckets if self._tokens(k, now) >= self.limit]:
                    del self._buckets[stale]

    def give_back(self, key: str) -> None:
        """Returns an event taken for something that turned out not to count."""
        if self.limit <= 0:
            return
        with self._lock:
            now = self._clock()
            self._buckets[key] = (min(float(self.limit), self._tokens(key, now) + 1), now)
