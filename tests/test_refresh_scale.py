"""Background refresh at scale: every core (`refresh_tokens --processes N`), and backpressure
against a provider that cannot keep up (the fast loopback token server, capped)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from social_django.models import UserSocialAuth

from integrations.background.pool import refresh_all
from integrations.background.refresher import Outcome, Refresher
from integrations.background.throttle import Throttle
from integrations.models import CredentialEvent
from integrations.store.credentials import read_credentials
from tests.conftest import command_env, grant_associations

REPO_ROOT = Path(__file__).resolve().parent.parent


def ago(seconds: float) -> int:
    return int(time.time() - seconds)


def stored_refresh_tokens(rows: list[UserSocialAuth]) -> list[str]:
    return [
        read_credentials(UserSocialAuth.objects.get(pk=row.pk).extra_data).refresh_token or ""
        for row in rows
    ]


@pytest.mark.postgres  # SQLite's refreshes run one at a time (its write lock): no overload
@pytest.mark.django_db(transaction=True)
def test_an_overloaded_provider_slows_the_sweep_down_and_no_grant_is_lost(fast_provider):
    rows = grant_associations(fast_provider, 60, expires_at=ago(10))
    # 20 refreshes a second at most; a queue longer than 100 ms is refused with 429 and
    # Retry-After: 1. Sixteen calls at once would queue for 800 ms.
    fast_provider.configure(latency_ms=20, rate=20, queue_ms=100, retry_after=1)
    refresher = Refresher.from_settings(within=600, throttle=Throttle(16))

    summary = refresh_all([row.pk for row in rows], refresher, concurrency=16)

    stats = fast_provider.stats()
    assert summary[Outcome.REFRESHED] == 60, summary.line()
    assert stats["rate_limited"] > 0, "the provider did push back"
    assert refresher.throttle.limit("demo") < 16, "and the sweep backed off"
    assert stats["invalid_grant"] == stats["reuse_detected"] == stats["answers_lost"] == 0
    assert fast_provider.current(stored_refresh_tokens(rows))["current"] == 60
    assert CredentialEvent.objects.filter(kind=CredentialEvent.Kind.REFRESHED).count() == 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_provider_that_queues_is_given_fewer_calls(fast_provider):
    """No refusals, only a queue (at most 40 refreshes/s, never refused): sixteen calls at
    once would wait 400 ms there, and more at a slower provider, until the token calls time
    out (a call the provider processed after its client gave up has rotated the grant
    away). The throttle notices the queue and keeps well below sixteen."""
    rows = grant_associations(fast_provider, 80, expires_at=ago(10))
    fast_provider.configure(latency_ms=20, rate=40, queue_ms=60_000)
    refresher = Refresher.from_settings(within=600, throttle=Throttle(16))

    summary = refresh_all([row.pk for row in rows], refresher, concurrency=16)

    stats = fast_provider.stats()
    assert summary[Outcome.REFRESHED] == 80, summary.line()
    assert stats["max_in_flight"] < 12, stats
    assert stats["answers_lost"] == stats["invalid_grant"] == stats["rate_limited"] == 0
    assert not CredentialEvent.objects.filter(kind=CredentialEvent.Kind.REFRESH_FAILED).exists()
    assert fast_provider.current(stored_refresh_tokens(rows))["current"] == 80


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_calls_in_flight_never_exceed_the_concurrency(fast_provider):
    """Chunks are held by threads of their own (here two chunks of 16 rows locked for 3
    calls in flight): however many rows are locked, the provider never has more calls in
    flight than asked for."""
    rows = grant_associations(fast_provider, 48, expires_at=ago(10))
    fast_provider.configure(latency_ms=30)
    refresher = Refresher.from_settings(within=600, throttle=Throttle(3))

    summary = refresh_all([row.pk for row in rows], refresher, concurrency=3)

    stats = fast_provider.stats()
    assert summary[Outcome.REFRESHED] == 48, summary.line()
    assert stats["max_in_flight"] <= 3, stats
    assert stats["token_calls"]["refresh_token"] == 48
    assert fast_provider.current(stored_refresh_tokens(rows))["current"] == 48


@pytest.mark.django_db(transaction=True)
def test_refresh_tokens_on_two_processes_refreshes_each_due_token_once(
    fast_provider, settings
):
    due = grant_associations(fast_provider, 120, expires_at=ago(10))
    fresh = grant_associations(fast_provider, 5)
    connection.close()  # the command's processes write to this database now
    fast_provider.configure(latency_ms=20)
    env = command_env(settings, fast_provider.base_url, LOG_LEVEL="WARNING")

    result = subprocess.run(
        [sys.executable, "manage.py", "refresh_tokens", "--processes", "2", "--concurrency", "8"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "120 due (120 expiring): refreshed 120, skipped 0, reauth required 0, failed 0, errors 0"
    ), result.stdout
    stats = fast_provider.stats()
    assert stats["token_calls"]["refresh_token"] == 120
    assert stats["invalid_grant"] == stats["reuse_detected"] == 0
    assert fast_provider.current(stored_refresh_tokens(due))["current"] == 120
    assert fast_provider.current(stored_refresh_tokens(fresh))["current"] == 5
    assert CredentialEvent.objects.filter(kind=CredentialEvent.Kind.REFRESHED).count() == 120


def test_processes_and_concurrency_must_be_positive():
    result = subprocess.run(
        [sys.executable, "manage.py", "refresh_tokens", "--processes", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "site_config.test_settings"},
    )
    assert result.returncode == 2
    assert "--processes: must be at least 1" in result.stderr


def test_a_chunk_that_cannot_be_read_counts_as_errors_not_as_nothing():
    from integrations.background.pool import run_all
    from integrations.background.refresher import Summary

    def unreadable(ids: list[int]) -> dict:
        raise OSError("the database went away")

    summary = run_all(
        [1, 2, 3], lambda pk, row: Outcome.REFRESHED, Summary(Outcome),
        error=Outcome.ERROR, concurrency=1, load=unreadable,
    )
    assert summary[Outcome.ERROR] == 3


def test_a_process_that_dies_stops_the_run_instead_of_hanging_it(monkeypatch):
    from integrations.background.processes import refresh_in_processes

    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "no_such_settings_module")
    started = time.monotonic()

    summary = refresh_in_processes(range(1, 41), processes=2, concurrency=4, within=600)

    assert summary[Outcome.ERROR] == 40
    assert time.monotonic() - started < 60


def test_a_worker_process_redacts_its_log_records_before_sending_them():
    """A worker process decrypted tokens its parent never saw: its records are redacted by
    the site's filters before they leave it."""
    import logging
    import queue

    from integrations.background.processes import _log_to
    from integrations.security import secrets_registry

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    saved = {
        logger: logger.handlers[:] for logger in loggers if isinstance(logger, logging.Logger)
    }
    logs: queue.Queue = queue.Queue()
    secret = "a-token-only-this-process-knows"
    try:
        _log_to(logs)
        secrets_registry.register(secret)
        logging.getLogger("integrations.background").warning("refreshing with %s", secret)
        record = logs.get_nowait()
    finally:
        for logger, handlers in saved.items():
            logger.handlers = handlers
    assert secret not in record.getMessage()
    assert "[redacted]" in record.getMessage()
