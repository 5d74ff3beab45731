"""Any OAuth 2.0 backend is a provider: a backend with no profile gets safe defaults, and a
profile adds what Custodian needs (backends/profiles/). Run against the real loopback
provider through a third-party backend that knows nothing of Custodian."""

from __future__ import annotations

import json
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.core.management import call_command
from social_django.models import UserSocialAuth

from backends.profiles import _PROFILES as REGISTERED
from backends.profiles import Profile, profile_for, register
from integrations import ForeignHostRefused, get_session, refresh
from integrations.checks import check_backends
from integrations.psa.disconnect import disconnect
from site_config.env import social_auth_settings
from tests.conftest import DEMO_CLIENT, connect

ACME = "tests.third_party_backends.AcmeOAuth2"
NO_REVOKE = "tests.third_party_backends.NoRevokeOAuth2"


@pytest.fixture
def acme(settings, provider, enable_backends):
    """The third-party backends, configured the PSA way and enabled."""
    for name in ("ACME", "NOREVOKE"):
        setattr(settings, f"SOCIAL_AUTH_{name}_KEY", DEMO_CLIENT[0])
        setattr(settings, f"SOCIAL_AUTH_{name}_SECRET", DEMO_CLIENT[1])
        setattr(settings, f"SOCIAL_AUTH_{name}_SERVER", provider.base_url)
    for name in ("acme", "norevoke"):
        provider.add_redirect_uri(DEMO_CLIENT[0], f"http://testserver/complete/{name}/")
    enable_backends(ACME, NO_REVOKE)


def _login(client, provider, backend="acme", username="alice") -> UserSocialAuth:
    response = connect(client, provider, backend, username=username)
    assert response.status_code == 302, response.content[:300]
    return UserSocialAuth.objects.get(provider=backend)


def _works(provider, token: str) -> bool:
    return requests.get(
        f"{provider.base_url}/ping/whoami",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code == 200


@pytest.mark.django_db
def test_a_backend_without_profile_is_offered_with_its_title(client, acme):
    page = client.get("/login/").content.decode()
    assert 'action="/login/acme/"' in page and "Acme" in page


@pytest.mark.django_db
def test_login_with_it_stores_encrypted_credentials_and_a_display_name(client, provider, acme):
    association = _login(client, provider)
    data = association.extra_data
    assert data["access_token"].startswith("enc:") and data["refresh_token"].startswith("enc:")
    assert data["status"] == "active"  # no approval step without a profile that asks
    assert data["display_name"] == "Acme Person"  # from the provider's user details


@pytest.mark.django_db
def test_without_an_api_base_only_absolute_urls_on_listed_hosts_get_the_token(
    client, provider, acme, settings
):
    association = _login(client, provider)
    with pytest.raises(ForeignHostRefused, match="API base URL"):
        get_session(association.user, "acme").get("/ping/whoami")
    with pytest.raises(ForeignHostRefused, match="none configured"):
        get_session(association.user, "acme").get(f"{provider.base_url}/ping/whoami")
    settings.SOCIAL_AUTH_ACME_API_HOSTS = [provider.base_url]
    assert get_session(association.user, "acme").get(f"{provider.base_url}/ping/whoami").ok
    settings.SOCIAL_AUTH_ACME_API_BASE_URL = provider.base_url
    assert get_session(association.user, "acme").get("/ping/whoami").json()["user_id"]


@pytest.mark.django_db
def test_refresh_goes_through_the_stock_backend(client, provider, acme):
    association = _login(client, provider)
    before = association.extra_data["access_token"]
    credentials = refresh(association, force=True)
    assert _works(provider, credentials.access_token)
    assert provider.stats()["token_calls"]["refresh_token"] == 1
    association.refresh_from_db()
    assert association.extra_data["access_token"] != before


@pytest.mark.django_db
def test_disconnect_revokes_with_social_cores_revoke_token(client, provider, acme):
    association = _login(client, provider)
    token = refresh(association).access_token
    outcome = disconnect(association)
    assert outcome.revoked is True
    assert not _works(provider, token)  # the refresh token's grant is gone at the provider
    assert not UserSocialAuth.objects.filter(provider="acme").exists()


@pytest.mark.django_db
def test_without_revoke_token_url_nothing_is_revoked_and_it_still_disconnects(
    client, provider, acme
):
    association = _login(client, provider, "norevoke")
    token = refresh(association).access_token
    outcome = disconnect(association)
    assert outcome.revoked is None and "offers no revocation" in outcome.reason
    assert _works(provider, token)


@pytest.mark.django_db
def test_a_profile_adds_authorization_params_unless_the_site_sets_its_own(
    client, acme, settings
):
    register(Profile(name="acme", auth_params={"access_type": "offline"}))
    try:
        query = parse_qs(urlsplit(client.post("/login/acme/")["Location"]).query)
        assert query["access_type"] == ["offline"]
        settings.SOCIAL_AUTH_ACME_AUTH_EXTRA_ARGUMENTS = {"prompt": "consent"}
        query = parse_qs(urlsplit(client.post("/login/acme/")["Location"]).query)
        assert query["prompt"] == ["consent"] and "access_type" not in query
    finally:
        REGISTERED.pop("acme")
    assert profile_for("acme") == Profile(name="acme")


@pytest.mark.django_db
def test_providers_command_shows_each_enabled_provider(acme, settings):
    out = StringIO()
    call_command("providers", stdout=out)
    text = out.getvalue()
    assert "acme  Acme" in text and "tests.third_party_backends.AcmeOAuth2" in text
    assert "set SOCIAL_AUTH_ACME_API_BASE_URL" in text
    assert "monzo  Monzo" in text and "access token as bearer" in text
    assert "as bearer, refreshed first when expired" in text
    assert "  other account sign out at the provider first" in text
    out = StringIO()
    call_command("providers", "--json", stdout=out)
    listed = {item["name"]: item for item in json.loads(out.getvalue())}
    assert listed["acme"]["profile"] == "none (safe defaults)"
    assert listed["acme"]["configured"] is True
    assert listed["demo"]["profile"] == "declared in CUSTODIAN_PROVIDERS"
    assert listed["norevoke"]["revocation"] == "none (no REVOKE_TOKEN_URL)"
    assert listed["demo"]["sign_out_url"].endswith("/logout/")
    assert listed["demo"]["connected_apps_url"].endswith("/apps/")
    assert listed["demo"]["select_account"] == {}
    assert settings.SOCIAL_AUTH_ACME_SECRET not in text  # never a secret


def test_social_auth_environment_variables_become_settings():
    parsed = social_auth_settings(
        {
            "SOCIAL_AUTH_OIDC_OIDC_ENDPOINT": "https://id.example",
            "SOCIAL_AUTH_OIDC_KEY": "0123",  # looks like a number, stays a string
            "SOCIAL_AUTH_OIDC_USE_PKCE": "true",
            "SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS": '{"access_type": "offline"}',
            "SOCIAL_AUTH_GOOGLE_OAUTH2_SCOPE": '["a", "b"]',
            "OTHER": "x",
        }
    )
    assert parsed == {
        "SOCIAL_AUTH_OIDC_OIDC_ENDPOINT": "https://id.example",
        "SOCIAL_AUTH_OIDC_KEY": "0123",
        "SOCIAL_AUTH_OIDC_USE_PKCE": True,
        "SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS": {"access_type": "offline"},
        "SOCIAL_AUTH_GOOGLE_OAUTH2_SCOPE": ["a", "b"],
    }


def test_bad_json_in_a_social_auth_variable_is_a_clear_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="SOCIAL_AUTH_X_SCOPE is not valid JSON"):
        social_auth_settings({"SOCIAL_AUTH_X_SCOPE": "[oops"})


def test_check_names_a_backend_path_that_cannot_be_loaded(settings):
    settings.CUSTODIAN_BACKENDS = [
        "social_core.backends.nope.Missing",
        "json.dumps",
        "social_core.backends.twitter.TwitterOAuth",
    ]
    problems = check_backends(None)
    assert [problem.id for problem in problems] == [
        "custodian.E005", "custodian.E005", "custodian.W002"
    ]
    assert "'social_core.backends.nope.Missing', which cannot be imported" in problems[0].msg
    assert "not a Python Social Auth backend" in problems[1].msg
    assert "not an OAuth 2.0 backend" in problems[2].msg


@pytest.mark.django_db(transaction=True)  # the command refreshes in threads
def test_time_moves_and_background_refresh_picks_up_stock_backends(client, provider, acme):
    association = _login(client, provider)
    expires_at = association.extra_data["expires_at"]
    with time_machine.travel(expires_at - 30, tick=False):
        out = StringIO()
        call_command("refresh_tokens", stdout=out)
    assert "refreshed 1," in out.getvalue(), out.getvalue()
    assert provider.stats()["token_calls"]["refresh_token"] == 1
    association.refresh_from_db()
    assert association.extra_data["expires_at"] > expires_at
