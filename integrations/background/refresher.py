"""Refresh one association in the background: re-check it is due, respect the provider's
rate limit, refresh through the single-flight `renew`, retry transient failures.

Used by `manage.py refresh_tokens` (many at once on threads, integrations/background/pool.py)
and by the Celery batch task. History (CredentialEvent) is written by the single flight itself
(integrations/refreshing/): a refreshed, refresh_failed or reauth_required event per try,
never twice here.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from social_django.models import UserSocialAuth

from integrations.background.backoff import RetryPolicy
from integrations.background.rate_limit import RateLimiter
from integrations.background.throttle import Throttle
from integrations.exceptions import (
    CredentialsUnreadable,
    ProviderNotOffered,
    ReauthRequired,
    RefreshFailed,
)
from integrations.providers.registry import keepalive_periods
from integrations.providers.transport import observing
from integrations.refreshing import batch
from integrations.refreshing.batch import RunCalls
from integrations.refreshing.single_flight import Answer, Renewal, renew
from integrations.store.credentials import Status, expires_at_of

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Failures that no retry can cure.
PERMANENT_CAUSES = frozenset({"invalid_setting"})
# HTTP statuses with which a provider turns a call away before processing it: the refresh
# token was not used, so trying again is safe (the throttle paces it).
REFUSED = frozenset({429, 503})
# Calls refused in a row after which one try counts as failed (a transient failure).
MAX_REFUSALS = 10
# Seconds a chunk's call may wait for its provider's rate limit while the chunk's rows are
# locked; a later slot is taken by the row alone, after the chunk.
CHUNK_WAIT = 1.0
# Token calls in flight at once when nothing else is said (refresh_tokens --concurrency).
DEFAULT_CONCURRENCY = 8


class Outcome(enum.Enum):
    REFRESHED = "refreshed"  # this caller called the token endpoint and stored new tokens
    SKIPPED = "skipped"  # not due (any more): someone else refreshed it, or it went away
    REAUTH_REQUIRED = "reauth required"  # the provider rejected the grant just now
    FAILED = "failed"  # a passing failure (RefreshFailed), after the retries allowed
    ERROR = "error"  # an unexpected exception: a bug or the database, not the provider


@dataclass(frozen=True)
class Attempt:
    """The result of one try; `retry` marks a transient failure worth another."""

    outcome: Outcome
    retry: bool = False
    refused: bool = False  # the provider turned the call away unprocessed (429, 503)


@dataclass
class Summary:
    """Counts of outcomes (of refreshes, or of another enum's: approval checks), safe to add
    to from several threads."""

    outcomes: type[enum.Enum] = Outcome
    counts: dict[Any, int] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys(self.outcomes, 0)

    def add(self, outcome: enum.Enum) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def __getitem__(self, outcome: enum.Enum) -> int:
        return self.counts[outcome]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        """E.g. "refreshed 10, skipped 0, reauth required 1, failed 0, errors 0"."""
        return ", ".join(
            f"{'errors' if outcome.name == 'ERROR' else outcome.value} {count}"
            for outcome, count in self.counts.items()
        )

    def as_dict(self) -> dict[str, int]:
        return {outcome.name.lower(): count for outcome, count in self.counts.items()}


class Refresher:
    """Refreshes associations by id; one instance may serve many threads."""

    def __init__(
        self,
        *,
        within: float,
        keepalive: Mapping[str, float] | None = None,
        limiter: RateLimiter | None = None,
        throttle: Throttle | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.within = within
        self.keepalive = dict(keepalive or {})
        self.limiter = limiter or RateLimiter({})
        self.throttle = throttle or Throttle(DEFAULT_CONCURRENCY)
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.rand = rand

    @classmethod
    def from_settings(
        cls, *, within: float | None = None, limiter: RateLimiter | None = None, **kwargs
    ) -> Refresher:
        return cls(
            within=settings.CUSTODIAN_REFRESH_WITHIN if within is None else within,
            keepalive=keepalive_periods(),
            limiter=limiter or RateLimiter(settings.CUSTODIAN_REFRESH_RATE_LIMITS),
            policy=RetryPolicy.from_settings(),
            **kwargs,
        )

    def refresh(self, association_id: int, association: UserSocialAuth | None = None) -> Outcome:
        """Refresh one association if due, retrying transient failures with backoff.

        `association`, when the caller has just read it (a batch is read in one query), saves
        the first try a query; the decision is made again under the row lock anyway.
        """
        return self.retried(association_id, self.try_once(association_id, association))

    def retried(self, association_id: int, result: Attempt) -> Outcome:
        """The outcome after `result`, the first try, and the retries it asks for."""
        tries = 1
        while result.retry and tries < self.policy.attempts:
            delay = self.policy.delay(tries, self.rand)
            logger.info(
                "Retrying association %s in %.1fs (try %d failed)", association_id, delay, tries
            )
            self.sleep(delay)
            result = self.try_once(association_id)
            tries += 1
        return result.outcome

    def try_once(
        self,
        association_id: int,
        association: UserSocialAuth | None = None,
        *,
        first: Attempt | None = None,
    ) -> Attempt:
        """One try, in which the provider's refusals (429, 503: nothing was processed) are
        tried again after the throttle's pause, MAX_REFUSALS calls in all (`first`: the
        first call's result, when made already)."""
        result = first or self.attempt(association_id, association)
        calls = 1
        while result.refused and calls < MAX_REFUSALS:
            result = self.attempt(association_id)
            calls += 1
        return result

    def try_chunk(self, ids: list[int], run: RunCalls) -> dict[int, Attempt]:
        """try_once for each of these associations; where the database allows, their rows
        are locked, their calls made (together, by `run`) and their tokens written as one
        (integrations/refreshing/batch.py). An unexpected exception is logged and counts as
        an ERROR for its association."""
        attempts: dict[int, Attempt] = {}
        if batch.supported():
            now = time.time()
            results = batch.renew_chunk(
                ids, due=lambda row: self.is_due(row, now), run=self._paced(run)
            )
            for pk, result in results.items():
                attempts[pk] = self._unexpected(pk, partial(self._attempt_of, pk, result))
                if attempts[pk].refused:
                    attempts[pk] = self._unexpected(
                        pk, partial(self.try_once, pk, first=attempts[pk])
                    )
        # Rows someone else held, or every row where a chunk cannot be locked: one by one.
        rest = [pk for pk in ids if pk not in attempts]
        rows = UserSocialAuth.objects.in_bulk(rest) if rest else {}
        for pk in rest:
            attempts[pk] = self._unexpected(pk, partial(self.try_once, pk, rows.get(pk)))
        return {pk: attempts[pk] for pk in ids}

    def attempt(self, association_id: int, association: UserSocialAuth | None = None) -> Attempt:
        """One try: skip the association unless still due, refresh it single-flight within
        the provider's rate limit and the throttle's limit on calls in flight."""
        if association is None:
            association = UserSocialAuth.objects.filter(pk=association_id).first()
        if association is None or not self.is_due(association, time.time()):
            return Attempt(Outcome.SKIPPED)
        found = association
        return self._paced_call(association.provider, lambda: self._renew(found))

    def _paced(self, run: RunCalls) -> RunCalls:
        """`run`, each call within the provider's rate limit and the throttle's limit."""

        def paced(calls: list[tuple[UserSocialAuth, Callable[[], Answer]]]) -> list[Any]:
            return run(
                [
                    (row, partial(self._chunk_call, row.provider, token_call))
                    for row, token_call in calls
                ]
            )

        return paced

    def _chunk_call(self, provider: str, work: Callable[[], Answer]) -> Answer:
        """A chunk's call, within the limits like any other, except that it is deferred
        (its row then refreshed alone, without holding the chunk's locks while it waits)
        when the provider asked for a pause or its rate limit's next slot is more than
        CHUNK_WAIT seconds away."""
        if self.limiter.acquire(provider, at_most=CHUNK_WAIT) is None:
            return batch.DEFERRED
        started = self.throttle.acquire_unless_paused(provider)
        if started is None:
            return batch.DEFERRED
        return self._observed(provider, started, work)

    def _paced_call(self, provider: str, work: Callable[[], T]) -> T:
        self.limiter.acquire(provider)
        return self._observed(provider, self.throttle.acquire(provider), work)

    def _observed(self, provider: str, started: float, work: Callable[[], T]) -> T:
        """Do `work` (a token call) and let the throttle learn from what the provider said."""
        with observing() as calls:
            try:
                return work()
            finally:
                self.throttle.release(provider, started, calls)

    def _renew(self, association: UserSocialAuth) -> Attempt:
        expires_at = expires_at_of(association.extra_data or {})
        try:
            if expires_at is None:
                # Keep-alive of a token without expiry: forced, still single-flight.
                renewal = renew(association, force=True)
            else:
                # Due as long as the stored expiry is still the one just read: once another
                # caller has replaced the token, this one does not refresh again.
                renewal = renew(association, leeway=expires_at - time.time())
        except Exception as error:
            return self._attempt_of(association.pk, error)
        return self._attempt_of(association.pk, renewal)

    @staticmethod
    def _attempt_of(association_id: int, result: batch.Result) -> Attempt:
        """The Attempt a renewal's result makes; an exception that is no refresh outcome is
        raised again."""
        if result is None:
            return Attempt(Outcome.SKIPPED)
        if isinstance(result, Renewal):
            return Attempt(Outcome.REFRESHED if result.refreshed else Outcome.SKIPPED)
        if isinstance(result, CredentialsUnreadable):
            # No configured key reads this row: no retry cures that, and the row is kept as
            # it is so that restoring the key brings it back.
            logger.warning("Association %s has undecryptable credentials", association_id)
            return Attempt(Outcome.FAILED)
        if isinstance(result, ProviderNotOffered):
            return Attempt(Outcome.SKIPPED)
        if isinstance(result, ReauthRequired):
            return Attempt(Outcome.REAUTH_REQUIRED)
        if isinstance(result, RefreshFailed):
            return Attempt(
                Outcome.FAILED,
                retry=result.cause not in PERMANENT_CAUSES,
                refused=_refused(result),
            )
        raise result

    @staticmethod
    def _unexpected(association_id: int, work: Callable[[], Attempt]) -> Attempt:
        try:
            return work()
        except Exception:
            logger.exception("Unexpected error with association %s", association_id)
            return Attempt(Outcome.ERROR)

    def is_due(self, association: UserSocialAuth, now: float) -> bool:
        """Due by expiry within the window, or by keep-alive; never when awaiting reconnect."""
        data = association.extra_data or {}
        if data.get("status") == Status.REAUTH_REQUIRED:
            return False
        expires_at = expires_at_of(data)
        if expires_at is not None and expires_at - now <= self.within:
            return True
        idle_limit = self.keepalive.get(association.provider)
        if idle_limit is None:
            return False
        last = data.get("refreshed_at") or association.created.timestamp()
        return now - float(last) >= idle_limit


def _refused(error: RefreshFailed) -> bool:
    """Whether the provider answered the token call with a refusal (429, 503)."""
    seen: BaseException | None = error
    while seen is not None:  # social-core's error, then requests' HTTPError
        status = getattr(seen, "status_code", None) or getattr(
            getattr(seen, "response", None), "status_code", None
        )
        if status in REFUSED:
            return True
        seen = seen.__cause__
    return False
