"""Python Social Auth's own token API on Custodian's encrypted rows (integrations/psa/token_api.py).

Code written against PSA reaches its rows as `user.social_auth.get(provider=…)`; these tests
use exactly that, and a token is only counted as good when the provider accepts it.
"""

from __future__ import annotations

import pytest
import requests
from social_django.models import UserSocialAuth
from social_django.utils import load_strategy

from integrations import ReauthRequired
from integrations.store.credentials import seal
from integrations.store.writes import merge_extra_data
from tests.conftest import expire_locally, on_postgresql, raw_extra_data
from tests.herd import process_herd, site_env, thread_herd
from tests.herd_worker import call_get_access_token


def _accepted(provider, token: str | None) -> bool:
    response = requests.get(
        f"{provider.base_url}/ping/whoami",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.status_code == 200


def _row(user) -> UserSocialAuth:
    return user.social_auth.get(provider="demo")


@pytest.mark.django_db
def test_access_token_is_the_plaintext_token_the_provider_accepts(connected, provider):
    user, association = connected("demo")
    token = _row(user).access_token
    assert token and not token.startswith("enc:")
    assert token not in raw_extra_data(association)  # still encrypted at rest
    assert _accepted(provider, token)


@pytest.mark.django_db
def test_access_token_expired_tells_the_truth(connected):
    user, association = connected("demo")
    assert _row(user).access_token_expired() is False
    expire_locally(association)
    assert _row(user).access_token_expired() is True
    merge_extra_data(association.pk, {"expires_at": None})  # the provider gave no lifetime
    assert _row(user).access_token_expired() is False


@pytest.mark.django_db
def test_get_access_token_refreshes_when_due_and_stores_the_rotation(connected, provider):
    user, association = connected("demo")
    before = _row(user).access_token
    expire_locally(association)

    token = _row(user).get_access_token(load_strategy())

    assert token != before and _accepted(provider, token)
    assert provider.stats()["token_calls"]["refresh_token"] == 1
    assert token not in raw_extra_data(association)
    row = _row(user)
    assert row.access_token == token and row.access_token_expired() is False
    # Fresh now: asking again makes no token call.
    assert row.get_access_token(load_strategy()) == token
    assert provider.stats()["token_calls"]["refresh_token"] == 1


@pytest.mark.django_db
def test_get_access_token_of_a_fresh_token_makes_no_token_call(connected, provider):
    user, _ = connected("demo")
    assert _accepted(provider, _row(user).get_access_token(load_strategy()))
    assert provider.stats()["token_calls"].get("refresh_token", 0) == 0


@pytest.mark.django_db
def test_refresh_token_refreshes_through_custodian(connected, provider):
    user, association = connected("demo")
    before = _row(user).access_token
    row = _row(user)
    row.refresh_token(load_strategy())
    assert row.access_token != before and _accepted(provider, row.access_token)
    assert provider.stats()["token_calls"]["refresh_token"] == 1
    assert row.extra_data["refresh_token"].startswith("enc:")
    kinds = list(association.credential_events.values_list("kind", flat=True))
    assert "refreshed" in kinds


@pytest.mark.django_db
def test_get_access_token_says_when_the_user_must_reconnect(connected, provider):
    user, association = connected("demo")
    expire_locally(association)
    # A refresh token the provider no longer knows: it answers invalid_grant.
    merge_extra_data(association.pk, seal({"refresh_token": "revoked-elsewhere"}))
    with pytest.raises(ReauthRequired):
        _row(user).get_access_token(load_strategy())
    # Nothing lost: the stored tokens are the ones from before.
    assert _row(user).extra_data["status"] == "reauth_required"
    assert _row(user).access_token


@pytest.mark.django_db(transaction=True)
def test_a_herd_of_threads_on_one_expired_token_makes_one_token_call(connected, provider):
    _, association = connected("demo")
    expire_locally(association)
    provider.latency(200)  # slow token calls widen the window in which the herd piles up

    tokens = thread_herd(
        16,
        lambda: UserSocialAuth.objects.get(pk=association.pk).get_access_token(load_strategy()),
    )

    assert len(set(tokens)) == 1 and len(tokens) == 16, tokens
    assert _accepted(provider, tokens[0])
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    assert stats["refresh_rejected"] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_herd_of_processes_on_one_expired_token_makes_one_token_call(
    connected, provider, settings
):
    assert on_postgresql()
    user, association = connected("demo")
    expire_locally(association)
    provider.latency(200)

    tokens = process_herd(
        4, call_get_access_token, site_env(settings, provider), user.pk, "demo"
    )

    assert len(set(tokens)) == 1, tokens
    assert _accepted(provider, tokens[0])
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    assert stats["refresh_rejected"] == 0
