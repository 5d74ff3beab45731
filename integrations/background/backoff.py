"""Exponential backoff with jitter for retrying transient refresh failures.

Jitter matters here: when a provider has an outage, every due token fails at once, and
retries without it would hit the provider again in one synchronized wave.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries a transient failure gets in all, and how long to wait between them."""

    attempts: int = 3
    base: float = 2.0
    cap: float = 60.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            attempts=max(1, settings.CUSTODIAN_REFRESH_ATTEMPTS),
            base=settings.CUSTODIAN_REFRESH_BACKOFF,
            cap=settings.CUSTODIAN_REFRESH_BACKOFF_MAX,
        )

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed try number `attempt` (1-based): half of
        min(cap, base * 2**(attempt-1)) fixed, the other half random ("equal jitter"),
        so a retry never comes back at once yet retries spread out."""
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 + rand() * ceiling / 2
