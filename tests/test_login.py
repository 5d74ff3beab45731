"""Login and linking through the real loopback OAuth server, for every backend."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from social_django.models import UserSocialAuth

from integrations.store.credentials import read_credentials
from tests.conftest import connect

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("backend", ["demo", "monzo"])
class TestLoginFlow:
    """The same journey for the generic and the Monzo backend; only the data differs."""

    @pytest.fixture(autouse=True)
    def approved_in_app(self, provider):
        provider.approve("alice")
        provider.approve("bob")

    def test_login_creates_user_and_association_with_normalized_tokens(
        self, backend, client, provider, django_user_model
    ):
        before = time.time()
        response = connect(client, provider, backend, username="alice")

        assert response.status_code == 302
        assert response["Location"] == "/connections/"
        association = UserSocialAuth.objects.get(provider=backend)
        assert association.uid == "user_alice"
        user = association.user
        assert user.signup_provider == backend
        assert client.get("/connections/").context["user"] == user
        data = association.extra_data
        assert {
            "access_token",
            "refresh_token",
            "token_type",
            "scope",
            "expires_at",
            "status",
        } <= set(data)
        assert "expires_in" not in data
        assert data["status"] == "active"
        assert data["token_type"] == "Bearer"
        assert before + 3600 - 5 <= data["expires_at"] <= time.time() + 3600 + 5
        credentials = read_credentials(data)
        assert credentials.access_token and credentials.refresh_token
        # The stored token is the one the provider issued: it works at the provider.
        import requests

        whoami = requests.get(
            f"{provider.base_url}/ping/whoami",
            headers={"Authorization": f"Bearer {credentials.access_token}"},
            timeout=5,
        )
        assert whoami.json()["user_id"] == "user_alice"

    def test_tokens_are_encrypted_at_rest(self, backend, client, provider):
        connect(client, provider, backend)
        association = UserSocialAuth.objects.get(provider=backend)
        credentials = read_credentials(association.extra_data)
        with connection.cursor() as cursor:
            cursor.execute("SELECT extra_data FROM social_auth_usersocialauth")
            raw = str(cursor.fetchall())
        assert credentials.access_token not in raw
        assert credentials.refresh_token not in raw
        assert "enc:" in raw

    def test_linking_attaches_to_the_logged_in_user(
        self, backend, client, provider, django_user_model
    ):
        local = django_user_model.objects.create_user("dora", password="a-long-password-1")
        client.force_login(local)

        response = connect(client, provider, backend, username="bob")

        assert response.status_code == 302
        association = UserSocialAuth.objects.get(provider=backend)
        assert association.user == local
        assert association.uid == "user_bob"
        assert django_user_model.objects.count() == 1
        assert local.signup_provider == ""

    def test_account_linked_to_someone_else_is_refused(
        self, backend, client, provider, django_user_model
    ):
        connect(client, provider, backend, username="alice")
        owner = UserSocialAuth.objects.get(provider=backend).user
        before = UserSocialAuth.objects.get(provider=backend).extra_data
        client.logout()
        intruder = django_user_model.objects.create_user("mallory", password="a-long-password-1")
        client.force_login(intruder)

        response = connect(client, provider, backend, username="alice")

        assert response.status_code == 403
        assert b"already linked to another user" in response.content
        association = UserSocialAuth.objects.get(provider=backend)
        assert association.user == owner
        assert association.extra_data == before
        assert not UserSocialAuth.objects.filter(user=intruder).exists()

    def test_denied_consent_shows_a_friendly_page_and_creates_nothing(
        self, backend, client, provider, django_user_model
    ):
        response = connect(client, provider, backend, allow=False)

        assert response.status_code == 403
        assert b"You declined to give access" in response.content
        assert b"Traceback" not in response.content
        assert not UserSocialAuth.objects.exists()
        assert not django_user_model.objects.exists()

    @pytest.mark.parametrize("state", ["wrong-state", None])
    def test_bad_state_creates_nothing(self, backend, state, client, provider, django_user_model):
        begin = client.post(f"/login/{backend}/")
        callback = urlsplit(provider.authorize(begin["Location"]))
        query = parse_qs(callback.query)
        params = {"code": query["code"][0]}
        if state is not None:
            params["state"] = state

        response = client.get(callback.path, params)

        assert response.status_code in (400, 403)
        assert b"nothing was connected" in response.content.lower()
        assert not UserSocialAuth.objects.exists()
        assert not django_user_model.objects.exists()

    def test_relogin_without_refresh_token_keeps_the_previous_one(self, backend, client, provider):
        connect(client, provider, backend)
        first = read_credentials(UserSocialAuth.objects.get(provider=backend).extra_data)
        client.logout()
        provider.fault("drop_refresh_token", grant_type="authorization_code")

        connect(client, provider, backend)

        second = read_credentials(UserSocialAuth.objects.get(provider=backend).extra_data)
        assert second.access_token != first.access_token
        assert second.refresh_token == first.refresh_token


def test_monzo_login_does_not_need_in_app_approval(client, provider):
    """Monzo's /accounts answers 403 until approval; login must not depend on it."""
    response = connect(client, provider, "monzo")
    assert response.status_code == 302
    association = UserSocialAuth.objects.get(provider="monzo")
    assert association.extra_data["user_id"] == "user_alice"
    assert association.extra_data["status"] == "awaiting_approval"


def test_monzo_authorization_request_has_monzo_shape(client, settings):
    settings.MONZO_AUTH_URL = "https://auth.monzo.com/"
    location = client.post("/login/monzo/")["Location"]
    url = urlsplit(location)
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "auth.monzo.com", "/")
    assert query["client_id"] == ["custodian-monzo"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://testserver/complete/monzo/"]
    assert query["state"][0]
    assert "code_challenge" not in query


def test_generic_backend_uses_pkce_s256(client):
    query = parse_qs(urlsplit(client.post("/login/demo/")["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43


def test_unconfigured_provider_shows_not_configured(client, settings):
    settings.MONZO_CLIENT_ID = ""

    page = client.get("/login/")
    response = client.post("/login/monzo/")

    assert b"Monzo \xe2\x80\x94 not configured" in page.content
    assert response.status_code == 503
    assert b"not configured" in response.content


def test_login_page_offers_each_provider(client):
    content = client.get("/login/").content.decode()
    assert 'action="/login/demo/"' in content
    assert 'action="/login/monzo/"' in content
    assert "Log in with Demo provider" in content
