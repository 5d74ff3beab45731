"""Celery tasks: the periodic sweep that finds due associations and those awaiting approval in
the provider's app, and the batch refresh and batch approval check it fans out to. Any number
of workers on any number of hosts may run them together: every refresh goes through the
single-flight `refresh_if_due`, so a batch delivered twice, or two sweeps overlapping, still
cause one token call per due token, and an approval fires `connection_approved` once.

A batch runs on CUSTODIAN_REFRESH_CONCURRENCY threads in the worker process, paced by that
process's throttle (integrations/background/throttle.py), so a prefork worker with one process
per core (`celery worker -P prefork -c <cores>`) uses every core. Transient failures are not
retried by sleeping in a worker: the task retries itself with the failed ids (Celery's
`self.retry`, countdown from the backoff policy), up to CUSTODIAN_REFRESH_ATTEMPTS tries in
all. A provider's outright refusal (429, 503) is retried in the batch after the pause the
throttle imposes, without counting as a try.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Task
from django.conf import settings

from integrations.background.approvals import ApprovalChecker, ApprovalOutcome
from integrations.background.backoff import RetryPolicy
from integrations.background.due import awaiting_approval, due_associations
from integrations.background.pool import refresh_all
from integrations.background.rate_limit import RateLimiter
from integrations.background.refresher import Attempt, Outcome, Refresher, Summary
from integrations.background.throttle import Throttle
from integrations.providers.registry import keepalive_periods
from site_config.celery import app

logger = logging.getLogger(__name__)

_limiters: dict[tuple, RateLimiter] = {}
_limiters_lock = threading.Lock()
_process_throttle: Throttle | None = None


def _throttle() -> Throttle:
    """One throttle per worker process (shared by its threads and its tasks), so backing off
    from a provider lasts beyond one batch."""
    global _process_throttle
    with _limiters_lock:
        if _process_throttle is None or (
            _process_throttle.maximum != settings.CUSTODIAN_REFRESH_CONCURRENCY
        ):
            _process_throttle = Throttle(settings.CUSTODIAN_REFRESH_CONCURRENCY)
        return _process_throttle


def _limiter() -> RateLimiter:
    """One limiter per worker process (shared by its threads), so the configured rate is
    per process: divide it by the number of worker processes you run."""
    rates = dict(settings.CUSTODIAN_REFRESH_RATE_LIMITS)
    key = tuple(sorted(rates.items()))
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = RateLimiter(rates)
        return _limiters[key]


@app.task(name="integrations.tasks.refresh_due_tokens")
def refresh_due_tokens(within: float | None = None, provider: str | None = None) -> dict[str, Any]:
    """Find the due associations (expiring or idle) and queue them, a task per batch of ids;
    queue every association awaiting approval for a re-check the same way."""
    within = float(settings.CUSTODIAN_REFRESH_WITHIN if within is None else within)
    ids = [
        item.association_id
        for item in due_associations(
            within=within, now=time.time(), provider=provider,
            keepalive=keepalive_periods(),
        )
    ]
    size = max(1, settings.CUSTODIAN_REFRESH_BATCH_SIZE)
    batches = [
        refresh_batch.apply_async((ids[start : start + size],), {"within": within}).id
        for start in range(0, len(ids), size)
    ]
    awaiting = awaiting_approval(provider=provider)
    approval_batches = [
        check_approvals.apply_async((awaiting[start : start + size],)).id
        for start in range(0, len(awaiting), size)
    ]
    logger.info(
        "%d associations due, queued in %d batches; %d awaiting approval, in %d batches",
        len(ids), len(batches), len(awaiting), len(approval_batches),
    )
    return {
        "due": len(ids),
        "batches": batches,
        "awaiting": len(awaiting),
        "approval_batches": approval_batches,
    }


@app.task(name="integrations.tasks.refresh_batch", bind=True)
def refresh_batch(
    self: Task, association_ids: list[int], within: float | None = None
) -> dict[str, Any]:
    """Refresh these associations (each only if still due) on CUSTODIAN_REFRESH_CONCURRENCY
    threads; retry the transient failures with Celery's own retry, after the backoff."""
    policy = RetryPolicy.from_settings()
    refresher = Refresher.from_settings(within=within, limiter=_limiter(), throttle=_throttle())
    retry_ids: list[int] = []

    def settle(pk: int, result: Attempt) -> Outcome:
        if result.retry:
            retry_ids.append(pk)
        return result.outcome

    summary = refresh_all(
        association_ids,
        refresher,
        concurrency=settings.CUSTODIAN_REFRESH_CONCURRENCY,
        settle=settle,
    )
    tries = self.request.retries + 1
    if retry_ids and tries < policy.attempts:
        countdown = policy.delay(tries)
        logger.info(
            "Batch: %s; retrying %d in %.1fs (try %d of %d failed)",
            summary.line(), len(retry_ids), countdown, tries, policy.attempts,
        )
        failed = set(retry_ids)
        raise self.retry(
            args=([pk for pk in association_ids if pk in failed],),  # most urgent first
            kwargs={"within": within},
            countdown=countdown,
            max_retries=policy.attempts - 1,
        )
    return summary.as_dict()


@app.task(name="integrations.tasks.check_approvals")
def check_approvals(association_ids: list[int]) -> dict[str, int]:
    """Ask the provider whether these associations' access is approved now (each only while
    still awaiting); a provider that cannot tell is asked again by the next sweep."""
    checker = ApprovalChecker(limiter=_limiter())
    summary = Summary(ApprovalOutcome)
    for pk in association_ids:
        try:
            summary.add(checker.check(pk))
        except Exception:
            logger.exception("Unexpected error checking the approval of association %s", pk)
            summary.add(ApprovalOutcome.ERROR)
    return summary.as_dict()


@app.task(name="integrations.tasks.prune_credential_events")
def prune_credential_events() -> None:
    """Delete credential history older than CUSTODIAN_EVENT_RETENTION_DAYS (daily, by beat)."""
    from django.core.management import call_command

    call_command("prune_credential_events", verbosity=0)
