"""Single flight: a herd of callers on one expired token makes exactly ONE token call.

The loopback server rotates refresh tokens with reuse detection on, so a double refresh would
show up as a rejected call and a revoked grant, not only as a count.
"""

from __future__ import annotations

import pytest

from integrations import get_session
from tests.conftest import connect, expire_locally, on_postgresql
from tests.herd import process_herd, site_env, thread_herd
from tests.herd_worker import call_whoami

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

    results = thread_herd(20, lambda: get_session(user, "demo").get("/ping/whoami").status_code)

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

    outcomes = process_herd(
        4, call_whoami, site_env(settings, provider), association.user_id
    )

    assert outcomes == [200] * 4
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    assert stats["refresh_rejected"] == 0
