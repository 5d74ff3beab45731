"""Per-provider rate limits for background refreshes, shared by the threads of one process.

Providers throttle token endpoints (Monzo answers 429); a thousand tokens falling due at
once must not become a thousand calls in the same second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class RateLimiter:
    """Spaces calls per provider at most `rate` per second (no bursts); unlisted providers
    are not limited. Thread-safe; the clock and sleep are injectable for tests."""

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._intervals = {name: 1.0 / rate for name, rate in rates.items() if rate > 0}
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self, provider: str, *, at_most: float = float("inf")) -> float | None:
        """Wait for this provider's next free slot; return the seconds waited. A slot more
        than `at_most` seconds away is not taken: None, at once."""
        interval = self._intervals.get(provider)
        if interval is None:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(provider, now))
            if slot - now > at_most:
                return None
            self._next[provider] = slot + interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait
