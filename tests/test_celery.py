"""Celery: the periodic sweep, the batch task, and a REAL worker process on the real Redis.

The worker tests start `celery -A site_config worker --pool prefork -c 2` against
redis://127.0.0.1:6379 on a Redis database and queue of its own (parallel runs never share
work), pointed at this test's database and at the loopback provider, and checks that due
tokens are refreshed exactly once even when sweeps overlap and a batch is delivered twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery import Celery
from celery.exceptions import Retry
from django.db import connection
from social_django.models import UserSocialAuth

from integrations.background import tasks
from integrations.models import CredentialEvent
from tests.conftest import database_env

REPO_ROOT = Path(__file__).resolve().parent.parent
REDIS_HOST = "redis://127.0.0.1:6379"
WORKER_START_TIMEOUT = 60
STOP_TIMEOUT = 10


def ago(seconds: float) -> int:
    return int(time.time() - seconds)


# --- the tasks, run in this process --------------------------------------------------------


class Dispatched:
    """Stands in for `apply_async`: records what would have been queued."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, args=(), kwargs=None, **options) -> SimpleNamespace:
        self.calls.append({"args": args, "kwargs": kwargs or {}, **options})
        return SimpleNamespace(id=f"task-{len(self.calls)}")


@pytest.mark.django_db
def test_sweep_fans_due_associations_out_in_batches_including_keepalive(
    granted, settings, monkeypatch
):
    settings.CUSTODIAN_REFRESH_BATCH_SIZE = 2
    settings.CUSTODIAN_KEEPALIVE = {"demo": 86400}
    expiring = granted(3, expires_at=ago(10))
    idle, fresh = granted(2)
    UserSocialAuth.objects.filter(pk=idle.pk).update(created=fresh.created.replace(year=2020))
    dispatched = Dispatched()
    monkeypatch.setattr(tasks.refresh_batch, "apply_async", dispatched)

    result = tasks.refresh_due_tokens()

    assert result == {"due": 4, "batches": ["task-1", "task-2"], "awaiting": 0,
                      "approval_batches": []}
    batches = [call["args"][0] for call in dispatched.calls]
    assert [len(batch) for batch in batches] == [2, 2]
    assert sorted(batches[0] + batches[1]) == sorted([row.pk for row in expiring] + [idle.pk])
    assert batches[1][-1] == idle.pk  # expiring tokens first
    assert all(call["kwargs"] == {"within": 600.0} for call in dispatched.calls)


def run_batch(association_ids: list[int], *, retries: int = 0) -> dict[str, Any]:
    """Run refresh_batch the way a worker runs its `retries`-th retry (self.request says so)."""
    task = tasks.refresh_batch
    task.push_request(
        id=f"batch-{retries}", retries=retries, called_directly=False, is_eager=False,
        args=[association_ids], kwargs={},
    )
    try:
        return task.run(association_ids)
    finally:
        task.pop_request()


@pytest.mark.django_db
def test_batch_retries_transient_failures_with_celerys_retry_but_not_reauth(
    granted, provider, settings, monkeypatch
):
    settings.CUSTODIAN_REFRESH_ATTEMPTS = 3
    settings.CUSTODIAN_REFRESH_BACKOFF = 10.0
    settings.CUSTODIAN_REFRESH_CONCURRENCY = 1  # the fault below hits the first token call
    failing, revoked, fine = granted(3, expires_at=ago(10))
    provider.revoke_grant(revoked.user.username)
    provider.fault("server_error", count=1)  # the first token call: `failing`'s
    dispatched = Dispatched()
    monkeypatch.setattr(tasks.refresh_batch, "apply_async", dispatched)

    with pytest.raises(Retry):
        run_batch([failing.pk, revoked.pk, fine.pk])

    (retry,) = dispatched.calls
    assert retry["args"] == ([failing.pk],)
    assert retry["kwargs"] == {"within": None}
    assert retry["retries"] == 1
    assert 5.0 <= retry["countdown"] <= 10.0  # backoff 10 s, half of it jitter
    assert UserSocialAuth.objects.get(pk=fine.pk).extra_data["expires_at"] > time.time()
    assert UserSocialAuth.objects.get(pk=revoked.pk).extra_data["status"] == "reauth_required"

    # The retried batch succeeds; on the last try allowed a failure is not retried again.
    assert run_batch(*retry["args"], retries=1)["refreshed"] == 1
    provider.fault("server_error", count=1)
    UserSocialAuth.objects.filter(pk=fine.pk).update(
        extra_data={**UserSocialAuth.objects.get(pk=fine.pk).extra_data, "expires_at": ago(5)}
    )
    assert run_batch([fine.pk], retries=2) == {
        "refreshed": 0, "skipped": 0, "reauth_required": 0, "failed": 1, "error": 0,
    }
    assert len(dispatched.calls) == 1
    assert provider.stats()["token_calls"]["refresh_token"] == 5


@pytest.mark.django_db
def test_batch_waits_out_a_refusal_without_spending_a_try(granted, provider, settings, monkeypatch):
    """A 429 means "not processed, come back later": the batch comes back after the pause
    (the throttle's) and the token is refreshed in the same run, without a Celery retry."""
    settings.CUSTODIAN_REFRESH_ATTEMPTS = 1
    settings.CUSTODIAN_REFRESH_CONCURRENCY = 1  # in this thread: it sees the test's rows
    (association,) = granted(1, expires_at=ago(10))
    provider.fault("rate_limited", count=1)
    dispatched = Dispatched()
    monkeypatch.setattr(tasks.refresh_batch, "apply_async", dispatched)
    monkeypatch.setattr(tasks, "_process_throttle", None)

    started = time.monotonic()
    assert run_batch([association.pk])["refreshed"] == 1
    assert time.monotonic() - started >= 1.0  # the pause after a refusal without Retry-After
    assert dispatched.calls == []
    assert provider.stats()["token_calls"]["refresh_token"] == 2


def test_celery_app_is_named_and_configured_from_settings(settings):
    import site_config

    app = site_config.celery_app

    assert app.main == "custodian"
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-due-tokens"]
    assert entry["task"] == tasks.refresh_due_tokens.name
    assert entry["task"] in app.tasks and tasks.refresh_batch.name in app.tasks
    assert app.conf.beat_schedule["refresh-due-tokens"]["schedule"] == float(
        settings.CUSTODIAN_REFRESH_INTERVAL
    )


def test_importing_the_project_does_not_import_celery():
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'site_config.settings'; "
        "django.setup(); import site_config; "
        "assert 'celery' not in sys.modules, 'imported early'; "
        "app = site_config.celery_app; print(app.main, app.conf.broker_url)"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["custodian", "redis://127.0.0.1:6379/0"]


# --- a real worker ----------------------------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[SimpleNamespace]:
    """A Redis database and a queue name of this run's own; its keys are removed after."""
    number = int(os.environ.get("CUSTODIAN_TEST_REDIS_DB") or 1 + os.getpid() % 15)
    url = f"{REDIS_HOST}/{number}"
    queue = f"custodian-test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(url)
    client.ping()  # Redis is part of the test environment: unreachable is a failure
    app = Celery("custodian-test", broker=url, backend=url)
    app.conf.update(task_default_queue=queue, broker_connection_retry_on_startup=True)
    sent: list[str] = []
    yield SimpleNamespace(url=url, queue=queue, app=app, sent=sent)
    client.delete(
        queue,
        f"_kombu.binding.{queue}",
        f"_kombu.binding_permanent.{queue}",
        *(f"celery-task-meta-{task_id}" for task_id in sent),
    )
    client.close()
    app.close()


@pytest.fixture
def worker(broker, settings, provider) -> Iterator[subprocess.Popen]:
    """`celery -A site_config worker --pool prefork -c 2` (two processes, each refreshing a
    batch on 4 threads), always terminated with its group."""
    log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed on teardown)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "SQLITE_PATH") and not key.startswith("CELERY_")
    }
    env.update(
        database_env(settings),
        DJANGO_SETTINGS_MODULE="site_config.settings",
        DEMO_PROVIDER_URL=provider.base_url,
        CELERY_BROKER_URL=broker.url,
        CELERY_RESULT_BACKEND=broker.url,
        CELERY_TASK_DEFAULT_QUEUE=broker.queue,
        CUSTODIAN_REFRESH_BATCH_SIZE="4",
        CUSTODIAN_REFRESH_CONCURRENCY="4",
        CUSTODIAN_REFRESH_BACKOFF="0.2",
        LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "site_config",
            "worker",
            "--pool",
            "prefork",
            "-c",
            "2",
            "-Q",
            broker.queue,
            "-n",
            f"{broker.queue}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process.log = log  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _worker_log(process: subprocess.Popen) -> str:
    process.log.flush()  # type: ignore[attr-defined]
    process.log.seek(0)  # type: ignore[attr-defined]
    return process.log.read()  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_refreshes_each_due_token_exactly_once(granted, provider, broker, worker):
    due = granted(10, expires_at=ago(10))
    not_due = granted(2)
    before = {row.pk: UserSocialAuth.objects.get(pk=row.pk).extra_data for row in not_due}
    connection.close()  # the worker writes to this database now
    provider.latency(50)  # slow token calls: overlapping work really overlaps

    def send(name: str, *args: Any):
        result = broker.app.send_task(name, args=args, queue=broker.queue)
        broker.sent.append(result.id)
        return result

    # Two sweeps at once (two beats on two hosts), and one batch of every due id besides.
    sweeps = [send("integrations.tasks.refresh_due_tokens") for _ in range(2)]
    direct = send("integrations.tasks.refresh_batch", [row.pk for row in due])
    try:
        outcomes = [direct.get(timeout=WORKER_START_TIMEOUT)]
        for sweep in sweeps:
            for batch_id in sweep.get(timeout=WORKER_START_TIMEOUT)["batches"]:
                broker.sent.append(batch_id)
                outcomes.append(broker.app.AsyncResult(batch_id).get(timeout=60))
    except Exception as error:
        raise AssertionError(f"worker did not answer: {error!r}\n{_worker_log(worker)}") from None

    assert sum(outcome["refreshed"] for outcome in outcomes) == 10, outcomes
    assert all(outcome["error"] == outcome["failed"] == 0 for outcome in outcomes), outcomes
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 10
    assert stats["refresh_rejected"] == 0
    for row in due:
        assert (
            CredentialEvent.objects.filter(
                association=row, kind=CredentialEvent.Kind.REFRESHED
            ).count()
            == 1
        )
        row.refresh_from_db()
        assert row.extra_data["expires_at"] > time.time() + 3000
    for pk, extra_data in before.items():
        assert UserSocialAuth.objects.get(pk=pk).extra_data == extra_data


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_a_failed_refresh_with_celerys_retry(
    granted, provider, broker, worker
):
    due = granted(4, expires_at=ago(10))
    connection.close()
    provider.fault("server_error", count=1)  # one of the four token calls fails

    result = broker.app.send_task(
        "integrations.tasks.refresh_batch", args=([row.pk for row in due],), queue=broker.queue
    )
    broker.sent.append(result.id)
    try:
        outcome = result.get(timeout=WORKER_START_TIMEOUT)
    except Exception as error:
        raise AssertionError(f"worker did not answer: {error!r}\n{_worker_log(worker)}") from None

    # The task's final result is its retry's: the one id that failed, refreshed now.
    assert outcome == {"refreshed": 1, "skipped": 0, "reauth_required": 0, "failed": 0,
                       "error": 0}
    assert result.state == "SUCCESS"
    assert provider.stats()["token_calls"]["refresh_token"] == 5
    assert CredentialEvent.objects.filter(kind=CredentialEvent.Kind.REFRESH_FAILED).count() == 1
    for row in due:
        row.refresh_from_db()
        assert row.extra_data["expires_at"] > time.time() + 3000
