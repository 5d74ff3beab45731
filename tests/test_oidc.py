"""OpenID Connect end to end, against a real OpenID provider on loopback (the demo provider,
django-oauth-toolkit with discovery): social-core's stock `OpenIdConnectAuth` configured the
way PSA documents it, and a provider declared by its issuer alone. Each must log in, store
encrypted credentials, serve get_session against the issuer, refresh when due (once, however
many ask), answer PSA's own get_access_token, and revoke on disconnect."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_django.models import Partial, UserSocialAuth
from social_django.utils import load_strategy

from integrations import ForeignHostRefused, get_session
from integrations.models import CredentialEvent
from integrations.psa.account_choice import SEALED
from integrations.store import crypto
from tests.conftest import (
    OIDC_CLIENT,
    choose_account,
    connect,
    expire_locally,
    on_postgresql,
    raw_extra_data,
)
from tests.herd import process_herd, site_env, thread_herd
from tests.herd_worker import call_get_access_token

STOCK = "social_core.backends.open_id_connect.OpenIdConnectAuth"


@dataclass(frozen=True)
class OpenIDSetup:
    """How one variant is enabled: in this process (settings) and in others (environment)."""

    name: str
    title: str
    env: dict[str, str]


@pytest.fixture(params=["stock", "issuer"])
def oidc(request, settings, provider, enable_backends) -> OpenIDSetup:
    # Discovery documents and keys are cached per process and URL: start from nothing.
    OpenIdConnectAuth.get_openid_configuration.invalidate()
    OpenIdConnectAuth.get_jwks_keys_for_uri.invalidate()
    if request.param == "stock":
        env = {
            "CUSTODIAN_BACKENDS": STOCK,
            "SOCIAL_AUTH_OIDC_OIDC_ENDPOINT": provider.base_url,
            "SOCIAL_AUTH_OIDC_KEY": OIDC_CLIENT[0],
            "SOCIAL_AUTH_OIDC_SECRET": OIDC_CLIENT[1],
            "SOCIAL_AUTH_OIDC_USE_PKCE": "true",
        }
        for name, value in env.items():
            if name.startswith("SOCIAL_AUTH_"):
                setattr(settings, name, value if value != "true" else True)
        enable_backends(STOCK)
        return OpenIDSetup("oidc", "OpenID Connect", env)
    declaration = {
        "issuer": provider.base_url,
        "client_id": OIDC_CLIENT[0],
        "client_secret": OIDC_CLIENT[1],
        "title": "Example ID",
    }
    settings.CUSTODIAN_PROVIDERS = {**settings.CUSTODIAN_PROVIDERS, "idp": declaration}
    enable_backends("backends.declared.idp")
    return OpenIDSetup(
        "idp", "Example ID", {"CUSTODIAN_PROVIDERS": json.dumps({"idp": declaration})}
    )


def _login(client, provider, oidc: OpenIDSetup, username: str = "alice") -> UserSocialAuth:
    response = connect(client, provider, oidc.name, username=username)
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == "/connections/"
    return UserSocialAuth.objects.get(provider=oidc.name, uid=f"user_{username}")


def _refresh_token_still_works(provider, association: UserSocialAuth) -> bool:
    """Ask the provider directly whether the stored refresh token is still alive."""
    from integrations.store.credentials import read_credentials

    refresh_token = read_credentials(association.extra_data).refresh_token
    response = requests.post(
        f"{provider.base_url}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=OIDC_CLIENT,
        timeout=10,
    )
    return response.status_code == 200


@pytest.mark.django_db
def test_login_page_offers_it_with_its_title(client, oidc):
    page = client.get("/login/").content.decode()
    assert f'action="/login/{oidc.name}/"' in page and oidc.title in page


@pytest.mark.django_db
def test_login_validates_the_id_token_and_stores_encrypted_credentials(client, provider, oidc):
    association = _login(client, provider, oidc)
    data = association.extra_data
    for key in ("access_token", "refresh_token", "id_token"):
        assert data[key].startswith("enc:"), key
    raw = raw_extra_data(association)
    for key in ("access_token", "refresh_token", "id_token"):
        assert crypto.decrypt(data[key]) not in raw, key  # none of them in the clear
    assert data["status"] == "active" and data["expires_at"] > time.time()
    assert data["display_name"] == "Alice Demo"
    assert association.user.email == "alice@demo.example"
    assert provider.stats()["token_calls"]["authorization_code"] == 1


@pytest.mark.django_db
def test_relative_urls_resolve_against_the_issuer(client, provider, oidc):
    user = _login(client, provider, oidc).user
    session = get_session(user, oidc.name)
    assert session.get("/oauth2/userinfo").json()["sub"] == "user_alice"
    with pytest.raises(ForeignHostRefused):
        session.get("http://127.0.0.2:9/steal")


@pytest.mark.django_db
def test_an_api_base_url_in_the_settings_wins_over_the_issuer(client, provider, oidc, settings):
    user = _login(client, provider, oidc).user
    if oidc.name == "oidc":
        settings.SOCIAL_AUTH_OIDC_API_BASE_URL = f"{provider.base_url}/oauth2"
    else:
        declaration = {**settings.CUSTODIAN_PROVIDERS["idp"]}
        declaration["api_base_url"] = f"{provider.base_url}/oauth2"
        settings.CUSTODIAN_PROVIDERS = {**settings.CUSTODIAN_PROVIDERS, "idp": declaration}
    assert get_session(user, oidc.name).get("userinfo").json()["sub"] == "user_alice"


@pytest.mark.django_db
def test_a_due_token_is_refreshed_once_and_discovery_is_not_fetched_again(
    client, provider, oidc
):
    association = _login(client, provider, oidc)
    before = association.extra_data["access_token"]
    expire_locally(association)
    session = get_session(association.user, oidc.name)
    assert session.get("/oauth2/userinfo").status_code == 200
    assert session.get("/oauth2/userinfo").status_code == 200
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    association.refresh_from_db()
    assert association.extra_data["access_token"] != before
    # Discovery and keys were fetched once for the login, and not for the refresh.
    assert (stats["discovery_calls"], stats["jwks_calls"]) == (1, 1)


@pytest.mark.django_db
def test_discovery_is_fetched_again_after_a_day(client, provider, oidc):
    _login(client, provider, oidc)
    client.post(f"/login/{oidc.name}/")  # a second login the same day: cached
    assert provider.stats()["discovery_calls"] == 1
    with time_machine.travel(time.time() + 25 * 3600, tick=False):
        client.post(f"/login/{oidc.name}/")
    assert provider.stats()["discovery_calls"] == 2


@pytest.mark.django_db
def test_psa_get_access_token_is_plaintext_and_fresh(client, provider, oidc):
    association = _login(client, provider, oidc)
    expire_locally(association)
    user = get_user_model().objects.get(pk=association.user_id)
    token = user.social_auth.get(provider=oidc.name).get_access_token(load_strategy())
    assert token and not token.startswith("enc:")
    response = requests.get(
        f"{provider.base_url}/oauth2/userinfo",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.json()["sub"] == "user_alice"
    assert provider.stats()["token_calls"]["refresh_token"] == 1


@pytest.mark.django_db
def test_an_expired_id_token_is_refused_and_creates_nothing(client, provider, oidc):
    begin = client.post(f"/login/{oidc.name}/")
    callback = provider.authorize(begin["Location"], username="bob")
    # Read 15 minutes later, the ID token is older than social-core accepts (10 minutes).
    with time_machine.travel(time.time() + 900, tick=False):
        response = client.get(callback.replace("http://testserver", ""))
    assert response.status_code == 400
    assert "could not be verified" in response.content.decode()
    assert not UserSocialAuth.objects.filter(provider=oidc.name).exists()
    assert not get_user_model().objects.filter(email="bob@demo.example").exists()


@pytest.mark.django_db
def test_disconnect_revokes_at_the_discovered_endpoint(client, provider, oidc):
    association = _login(client, provider, oidc)
    stored = UserSocialAuth.objects.get(pk=association.pk)
    association.user.set_password("not the only way in")  # else PSA refuses the disconnect
    association.user.save()
    client.force_login(association.user)
    response = client.post(f"/disconnect/{oidc.name}/{association.pk}/")
    assert response.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    assert not _refresh_token_still_works(provider, stored)
    kinds = set(
        CredentialEvent.objects.filter(provider=oidc.name).values_list("kind", "detail")
    )
    assert ("revoked", "") in kinds


@pytest.mark.django_db(transaction=True)
def test_a_herd_of_threads_on_one_expired_token_makes_one_token_call(client, provider, oidc):
    association = _login(client, provider, oidc)
    expire_locally(association)
    provider.latency(200)

    results = thread_herd(
        12,
        lambda: get_session(association.user, oidc.name).get("/oauth2/userinfo").status_code,
    )

    assert results == [200] * 12
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    assert stats["refresh_rejected"] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_herd_of_processes_on_one_expired_token_makes_one_token_call(
    client, provider, oidc, settings
):
    assert on_postgresql()
    association = _login(client, provider, oidc)
    expire_locally(association)
    provider.latency(200)
    # Configured from the environment, as a deployment would be.
    env = site_env(settings, provider, **oidc.env)

    tokens = process_herd(4, call_get_access_token, env, association.user_id, oidc.name)

    assert len(set(tokens)) == 1, tokens
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 1
    assert stats["refresh_rejected"] == 0


@pytest.mark.django_db
def test_the_admin_connects_refreshes_and_revokes_it(
    admin_client, admin_user, provider, oidc, django_user_model
):
    admin_url = "/admin/social_django/usersocialauth/"
    callback = f"http://testserver{admin_url}connect/complete/{oidc.name}/"
    provider.add_redirect_uri(OIDC_CLIENT[0], callback)
    bob = django_user_model.objects.create_user("bob", password="a-long-password-1")
    assert f'value="{oidc.name}"' in admin_client.get(f"{admin_url}add/").content.decode()

    begin = admin_client.post(f"{admin_url}add/", {"provider": oidc.name, "user": bob.pk})
    answer = urlsplit(provider.authorize(begin["Location"], username="alice"))
    response = admin_client.get(f"{answer.path}?{answer.query}")
    association = UserSocialAuth.objects.get(provider=oidc.name, uid="user_alice")
    assert association.user == bob and response.status_code == 302
    listing = admin_client.get(admin_url).content.decode()
    assert "user_alice" in listing and oidc.title in listing

    refreshed = admin_client.post(
        admin_url, {"action": "refresh_now", "_selected_action": [association.pk], "index": 0}
    )
    assert refreshed.status_code == 302
    assert provider.stats()["token_calls"]["refresh_token"] == 1

    done = admin_client.post(
        admin_url,
        {"action": "revoke_and_disconnect", "_selected_action": [association.pk],
         "index": 0, "post": "yes"},
    )
    assert done.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    events = list(
        CredentialEvent.objects.filter(provider=oidc.name)
        .order_by("pk")
        .values_list("kind", "detail")
    )
    assert events == [
        ("connected", ""), ("refreshed", ""), ("revoked", ""), ("disconnected", "from the admin")
    ]


@pytest.mark.django_db
def test_a_paused_openid_login_keeps_no_token_readable_and_names_the_user(
    client, provider, oidc
):
    """The choice between a new account and an existing one holds the token response, ID
    token included, sealed; the new user is named after preferred_username."""
    assert connect(client, provider, oidc.name, choose=None)["Location"] == "/account/choose/"
    (data,) = Partial.objects.values_list("data", flat=True)
    tokens = json.loads(crypto.decrypt(data["kwargs"]["response"][SEALED]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM social_auth_partial")
        raw = str(cursor.fetchall())
    secrets = [tokens[key] for key in ("access_token", "refresh_token", "id_token")]
    assert all(secrets) and not any(secret in raw for secret in secrets)

    assert choose_account(client, "create")["Location"] == "/connections/"
    association = UserSocialAuth.objects.get(provider=oidc.name, uid="user_alice")
    assert association.user.username == "alice"
    assert crypto.decrypt(association.extra_data["id_token"]) == tokens["id_token"]
