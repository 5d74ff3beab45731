"""get_session / get_token / refresh against the real loopback OAuth server (rotation and
reuse detection on)."""

from __future__ import annotations

import time

import pytest
import requests
from social_django.models import UserSocialAuth

from integrations import (
    MultipleAccounts,
    NotConnected,
    ReauthRequired,
    RefreshFailed,
    credentials_refreshed,
    get_session,
    get_token,
    reauth_required,
    refresh,
)
from integrations.store.credentials import fingerprint, read_credentials
from integrations.store.writes import merge_extra_data
from tests.conftest import connect, expire_locally, raw_extra_data

pytestmark = pytest.mark.django_db


def refresh_calls(provider) -> int:
    return provider.stats()["token_calls"].get("refresh_token", 0)


@pytest.mark.parametrize("backend", ["demo", "monzo"])
def test_valid_token_is_used_without_refresh(backend, connected, provider):
    user, _ = connected(backend)

    response = get_session(user, backend).get("/ping/whoami")

    assert response.status_code == 200
    assert response.json()["user_id"] == "user_alice"
    assert refresh_calls(provider) == 0


@pytest.mark.parametrize("backend", ["demo", "monzo"])
def test_proactive_refresh_rotates_and_persists(backend, connected, provider, time_machine):
    user, association = connected(backend)
    old = read_credentials(association.extra_data)
    # The token lives an hour: come back later (here, not at the provider, which still
    # accepts the token, like expire_locally).
    time_machine.move_to(old.expires_at + 10, tick=False)
    seen = []

    def on_refreshed(sender, association, **kwargs):
        seen.append(sender)

    credentials_refreshed.connect(on_refreshed)
    try:
        response = get_session(user, backend).get("/ping/whoami")
    finally:
        credentials_refreshed.disconnect(on_refreshed)

    assert response.status_code == 200
    assert refresh_calls(provider) == 1
    assert seen == [backend]
    association.refresh_from_db()
    new = read_credentials(association.extra_data)
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token
    assert new.expires_at > time.time() + 3000
    assert association.extra_data["refreshed_at"]


def test_token_within_leeway_is_refreshed_first(connected, provider, settings):
    user, _association = connected()
    settings.CUSTODIAN_REFRESH_LEEWAY = 4000  # the token lives 3600 s: it is "due"
    assert get_session(user, "demo").get("/ping/whoami").status_code == 200
    assert refresh_calls(provider) == 1


def test_reactive_refresh_on_401_retries_once(connected, provider):
    user, _ = connected()
    provider.expire_access("alice")  # the provider now rejects the token we think is valid

    response = get_session(user, "demo").get("/ping/whoami")

    assert response.status_code == 200
    assert refresh_calls(provider) == 1


def test_second_401_goes_back_to_the_caller(connected, provider, settings, stub_api):
    user, _ = connected()
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = stub_api.base_url

    response = get_session(user, "demo").get("/always-401")

    assert response.status_code == 401
    assert stub_api.hits == ["/always-401", "/always-401"]
    assert refresh_calls(provider) == 1


def test_token_changed_in_flight_is_used_without_refreshing_again(connected, provider):
    user, association = connected()
    session = get_session(user, "demo")  # holds the current token
    refresh(association, force=True)  # another caller rotates it; the old one is now dead
    assert refresh_calls(provider) == 1

    response = session.get("/ping/whoami")

    assert response.status_code == 200
    assert refresh_calls(provider) == 1


def test_response_without_refresh_token_keeps_the_old_one(connected, provider):
    _user, association = connected()
    old = read_credentials(association.extra_data)
    provider.fault("drop_refresh_token")

    new = refresh(association, force=True)

    assert new.access_token != old.access_token
    assert new.refresh_token == old.refresh_token
    association.refresh_from_db()
    assert read_credentials(association.extra_data).refresh_token == old.refresh_token
    # ... and it still works.
    refresh(association, force=True)
    assert refresh_calls(provider) == 2


def test_refresh_is_a_no_op_when_not_due(connected, provider):
    _, association = connected()
    before = raw_extra_data(association)
    refresh(association)
    assert refresh_calls(provider) == 0
    assert raw_extra_data(association) == before


def test_refresh_writes_only_token_fields(connected, provider):
    _, association = connected()
    stale = UserSocialAuth.objects.get(pk=association.pk)
    # Another writer adds a key after we loaded the row.
    merge_extra_data(association.pk, {"nickname": "Current account"})

    refresh(stale, force=True)

    association.refresh_from_db()
    assert association.extra_data["nickname"] == "Current account"


@pytest.mark.parametrize(
    "mode", ["server_error", "rate_limited", "garbage", "no_access_token", "timeout"]
)
def test_transient_failure_keeps_credentials_byte_for_byte(mode, connected, provider, settings):
    settings.SOCIAL_AUTH_REQUESTS_TIMEOUT = 1
    user, association = connected()
    expire_locally(association)
    before = raw_extra_data(association)
    provider.fault(mode)

    with pytest.raises(RefreshFailed) as caught:
        get_session(user, "demo").get("/ping/whoami")

    assert caught.value.cause
    assert raw_extra_data(association) == before
    association.refresh_from_db()
    assert association.extra_data["status"] == "active"
    # Nothing was lost: the next attempt succeeds.
    assert get_session(user, "demo").get("/ping/whoami").status_code == 200


def test_connection_refused_is_transient(connected, settings):
    user, association = connected()
    expire_locally(association)
    before = raw_extra_data(association)
    settings.CUSTODIAN_PROVIDERS["demo"]["token_url"] = "http://127.0.0.1:9/oauth2/token"

    with pytest.raises(RefreshFailed) as caught:
        get_token(user, "demo")

    assert caught.value.cause == "connection_failed"
    assert raw_extra_data(association) == before


@pytest.mark.parametrize("backend", ["demo", "monzo"])
def test_revoked_grant_flips_status_and_raises_reauth_required(backend, connected, provider):
    user, association = connected(backend)
    expire_locally(association)
    old = read_credentials(association.extra_data)
    provider.revoke_grant("alice")
    fired = []

    def on_reauth(sender, association, reason, **kwargs):
        fired.append(reason)

    reauth_required.connect(on_reauth)
    try:
        with pytest.raises(ReauthRequired):
            get_session(user, backend).get("/ping/whoami")
    finally:
        reauth_required.disconnect(on_reauth)

    association.refresh_from_db()
    assert association.extra_data["status"] == "reauth_required"
    assert fired and fired[0] in {"invalid_grant", "unauthorized.bad_refresh_token"}
    # The credentials themselves are kept (nothing destroyed).
    assert read_credentials(association.extra_data).refresh_token == old.refresh_token
    # From now on the session is refused up front, without calling the provider.
    with pytest.raises(ReauthRequired):
        get_session(user, backend)
    assert provider.stats()["token_calls"]["refresh_token"] == 1


def test_reconnecting_restores_an_association(connected, provider, client):
    user, association = connected()
    expire_locally(association)
    provider.revoke_grant("alice")
    with pytest.raises(ReauthRequired):
        get_token(user, "demo")

    connect(client, provider, "demo")

    association.refresh_from_db()
    assert association.extra_data["status"] == "active"
    assert get_session(user, "demo").get("/ping/whoami").status_code == 200


def test_relative_urls_resolve_and_other_hosts_are_refused(connected, settings, stub_api):
    user, association = connected()
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = stub_api.base_url + "/v1"
    session = get_session(user, "demo")
    token = read_credentials(association.extra_data).access_token

    body = session.get("/accounts").json()

    assert body["path"] == "/v1/accounts"
    assert body["auth"] == fingerprint(f"Bearer {token}")
    with pytest.raises(ValueError, match="Refusing"):
        session.get("http://127.0.0.2:1/steal")


def test_requests_have_a_default_timeout(connected, settings, stub_api):
    user, _ = connected()
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = stub_api.base_url
    settings.CUSTODIAN_HTTP_TIMEOUT = 0.3
    with pytest.raises(requests.Timeout):
        get_session(user, "demo").get("/slow")


def test_get_token_returns_a_fresh_token(connected, provider):
    user, association = connected()
    expire_locally(association)

    token = get_token(user, "demo")

    assert set(token) == {"access_token", "token_type", "expires_at", "scope"}
    assert token["token_type"] == "Bearer"
    whoami = requests.get(
        f"{provider.base_url}/ping/whoami",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    )
    assert whoami.status_code == 200
    assert refresh_calls(provider) == 1


def test_not_connected(django_user_model):
    user = django_user_model.objects.create_user("eve", password="a-long-password-1")
    with pytest.raises(NotConnected):
        get_session(user, "demo")


def test_a_user_never_gets_another_users_association(connected, django_user_model):
    _, association = connected()
    other = django_user_model.objects.create_user("eve", password="a-long-password-1")
    with pytest.raises(NotConnected):
        get_session(other, "demo")
    with pytest.raises(NotConnected):
        get_session(other, "demo", uid=association.uid)
    with pytest.raises(NotConnected):
        get_token(other, "demo", uid=association.uid)


def test_several_accounts_need_a_uid(client, provider, django_user_model):
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    connect(client, provider, "demo", username="alice")
    connect(client, provider, "demo", username="bob")

    with pytest.raises(MultipleAccounts) as caught:
        get_session(user, "demo")

    assert "user_alice" in str(caught.value) and "user_bob" in str(caught.value)
    body = get_session(user, "demo", uid="user_bob").get("/ping/whoami").json()
    assert body["user_id"] == "user_bob"


def test_session_repr_and_errors_show_no_token(connected, provider):
    user, association = connected()
    token = read_credentials(association.extra_data).access_token
    session = get_session(user, "demo")
    assert token not in repr(session)
    assert token not in repr(read_credentials(association.extra_data))
    expire_locally(association)
    provider.fault("server_error")
    with pytest.raises(RefreshFailed) as caught:
        get_session(user, "demo").get("/ping/whoami")
    assert token not in str(caught.value)


def test_basic_client_auth_is_used_for_refresh_too(connected, provider, settings):
    """A provider declared with client_secret_basic gets Basic credentials on refresh
    (the loopback server accepts either; the request must still succeed and rotate)."""
    from backends.generic import declared_backend

    settings.CUSTODIAN_PROVIDERS["demo"]["token_auth"] = "client_secret_basic"
    backend = declared_backend("demo")(None)
    assert backend.refresh_token_auth() is not None
    assert "client_secret" not in backend.refresh_token_params("r")
    user, association = connected()
    expire_locally(association)
    assert get_session(user, "demo").get("/ping/whoami").status_code == 200
    assert refresh_calls(provider) == 1


def test_refresh_records_who_asked(connected, django_user_model):
    from integrations.models import CredentialEvent

    _, association = connected()
    admin_user = django_user_model.objects.create_user("root", password="a-long-password-1")
    refresh(association, force=True, actor=admin_user)
    event = CredentialEvent.objects.filter(association=association).first()
    assert (event.kind, event.actor) == ("refreshed", admin_user)
