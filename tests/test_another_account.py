"""Connecting another account of a provider already connected: the connections page offers
it; the begin request's another_account=1 adds the profile's account-chooser parameters (and
nothing the request says); a provider without a chooser is answered with "sign out there
first", and when the same account comes back the person is told so rather than nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_django.models import UserSocialAuth

from tests.conftest import OIDC_CLIENT
from tests.test_disconnect_notices import flashed

pytestmark = pytest.mark.django_db

GOOGLE = "social_core.backends.google.GoogleOAuth2"


def begin(client, backend: str, **data: str) -> dict[str, str]:
    """POST the begin form; return the query of the authorization URL it redirects to."""
    response = client.post(f"/login/{backend}/", data)
    assert response.status_code == 302, response.content[:300]
    query = parse_qs(urlsplit(response["Location"]).query)
    return {key: values[0] for key, values in query.items()}


@pytest.fixture
def google(settings, enable_backends):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "google-client"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "google-secret"
    enable_backends(GOOGLE)


def test_another_account_sends_the_profiles_account_chooser(client, google):
    plain = begin(client, "google-oauth2")
    another = begin(client, "google-oauth2", another_account="1")

    assert (plain["prompt"], plain["access_type"]) == ("consent", "offline")
    # Still consent: an account that consented before brings no refresh token without it.
    assert (another["prompt"], another["access_type"]) == ("select_account consent", "offline")


@pytest.mark.parametrize("flag", ["0", "yes", "", "1 "])
def test_only_the_flag_one_asks(client, google, flag):
    assert begin(client, "google-oauth2", another_account=flag)["prompt"] == "consent"


def test_the_request_cannot_add_or_replace_parameters(client, google):
    sent = begin(
        client,
        "google-oauth2",
        another_account="1",
        prompt="none",
        access_type="online",
        redirect_uri="https://evil.example/cb",
        login_hint="victim@example.com",
    )

    assert sent["prompt"] == "select_account consent"
    assert sent["access_type"] == "offline"
    assert sent["redirect_uri"] == "http://testserver/complete/google-oauth2/"
    assert "login_hint" not in sent


def test_a_sites_own_parameters_keep_the_chooser(client, google, settings):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS = {"hd": "example.com"}

    plain = begin(client, "google-oauth2")
    another = begin(client, "google-oauth2", another_account="1")

    assert (plain["hd"], "prompt" in plain, "access_type" in plain) == ("example.com", False, False)
    assert (another["hd"], another["prompt"]) == ("example.com", "select_account consent")


def test_a_provider_declared_by_issuer_gets_openid_connects_chooser(
    client, settings, provider, enable_backends
):
    OpenIdConnectAuth.get_openid_configuration.invalidate()
    settings.CUSTODIAN_PROVIDERS = {
        **settings.CUSTODIAN_PROVIDERS,
        "idp": {"issuer": provider.base_url, "client_id": OIDC_CLIENT[0],
                "client_secret": OIDC_CLIENT[1], "title": "Example ID"},
    }
    enable_backends("backends.declared.idp")

    assert "prompt" not in begin(client, "idp")
    assert begin(client, "idp", another_account="1")["prompt"] == "select_account"


def test_a_declaration_names_its_own_chooser(client, settings):
    settings.CUSTODIAN_PROVIDERS["demo"]["select_account"] = {"prompt": "login"}

    assert "prompt" not in begin(client, "demo")
    assert begin(client, "demo", another_account="1")["prompt"] == "login"


def test_without_a_chooser_nothing_is_added(client):
    plain, another = begin(client, "demo"), begin(client, "demo", another_account="1")
    assert set(plain) == set(another)


def complete(client, provider, username: str, **data: str):
    """Begin (with `data`), sign in at the provider as `username`, allow, come back."""
    response = client.post("/login/demo/", data)
    callback = urlsplit(provider.authorize(response["Location"], username=username))
    return client.get(f"{callback.path}?{callback.query}", follow=True)


def test_connecting_another_demo_account_signs_out_first(connected, client, provider):
    user, _alice = connected("demo", "alice")
    client.get("/connections/")  # shows (and so clears) "… is connected"

    page = client.get("/connections/").content.decode()
    assert "Connect another Demo provider account" in page
    assert '<input type="hidden" name="another_account" value="1">' in page
    assert (
        f'<a href="{provider.base_url}/logout/" target="_blank" rel="noopener noreferrer">'
        "sign out at Demo provider</a> first." in page
    )

    # The provider is still signed in as alice (here: the harness signs in as alice again).
    same = complete(client, provider, "alice", another_account="1").content.decode()
    [message] = flashed(same)
    assert message["level"] == "warning"
    assert message["text"].startswith(
        "Demo provider account alice is already connected, so nothing was added."
    )
    assert [link["href"] for link in message["links"]] == [f"{provider.base_url}/logout/"]
    assert UserSocialAuth.objects.filter(user=user).count() == 1

    other = complete(client, provider, "bob", another_account="1").content.decode()
    [message] = flashed(other)
    assert message["text"] == "Demo provider account bob is connected."
    assert sorted(UserSocialAuth.objects.filter(user=user).values_list("uid", flat=True)) == [
        "user_alice", "user_bob"
    ]
    assert "another_account" not in client.session or client.session["another_account"] is None


def test_with_a_chooser_the_same_account_back_is_told_to_pick_another(
    connected, client, provider, settings
):
    settings.CUSTODIAN_PROVIDERS["demo"]["select_account"] = {"prompt": "login"}
    connected("demo", "alice")
    client.get("/connections/")

    same = complete(client, provider, "alice", another_account="1").content.decode()

    [message] = flashed(same)
    assert message["text"].endswith(
        "pick or add that account when Demo provider asks which one to use."
    )
    assert message["links"] == []


def test_a_reconnect_of_the_same_account_is_not_told_off(connected, client, provider):
    connected("demo", "alice")
    client.get("/connections/")

    again = complete(client, provider, "alice").content.decode()

    [message] = flashed(again)
    assert message["text"] == "Demo provider account alice is connected."


def test_the_page_offers_connect_until_connected_and_no_sign_out_with_a_chooser(
    client, django_user_model, settings
):
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    page = client.get("/connections/").content.decode()
    assert "Connect Demo provider" in page and "another_account" not in page

    settings.CUSTODIAN_PROVIDERS["demo"]["select_account"] = {"prompt": "login"}
    UserSocialAuth.objects.create(user=user, provider="demo", uid="user_x", extra_data={})
    page = client.get("/connections/").content.decode()
    assert "Connect another Demo provider account" in page
    assert "sign out at Demo provider" not in page
