"""Single flight: a herd of callers on one expired token makes exactly ONE token call.

The loopback server rotates refresh tokens with reuse detection on, so a double refresh would
show up as a rejected call and a revoked grant, not only as a count.
"""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from django.db import connection

from integrations import get_session
from tests.conftest import connect, expire_locally, on_postgresql

pytestmark = pytest.mark.django_db(transaction=True)


def _connected_and_expired(client, provider):
    connect(client, provider, "demo")
    from social_django.models import UserSocialAuth

    association = UserSocialAuth.objects.get(provider="demo")
    expire_locally(association)
    # Slow token calls widen the window in which the herd piles up.
    provider.latency(200)
    return association


def test_threads_on_one_expired_token_cause_one_refresh(client, provider):
    association = _connected_and_expired(client, provider)
    user = association.user
    barrier = threading.Barrier(20)
    results: list[object] = []

    def call() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(get_session(user, "demo").get("/ping/whoami").status_code)
        except Exception as error:  # the assertion below shows it
            results.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert results == [200] * 20
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    assert stats["refresh_rejected"] == 0
    association.refresh_from_db()
    assert association.extra_data["status"] == "active"


@pytest.mark.postgres
def test_processes_on_one_expired_token_cause_one_refresh(client, provider, settings):
    assert on_postgresql()
    association = _connected_and_expired(client, provider)
    db = settings.DATABASES["default"]
    env = {
        "DJANGO_SETTINGS_MODULE": "site_config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DEMO_PROVIDER_URL": provider.base_url,
        "LOG_LEVEL": "WARNING",
    }
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    from tests.herd_worker import call_whoami

    processes = [
        context.Process(target=call_whoami, args=(env, association.user_id, barrier, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert outcomes == [200] * 4
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    assert stats["refresh_rejected"] == 0
