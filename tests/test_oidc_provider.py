"""The demo provider as an OpenID Connect provider, over real HTTP: discovery, JWKS, the
code flow with PKCE and a nonce, userinfo, refresh, revocation; then social-core's stock
OpenIdConnectAuth, configured by issuer alone, validating and refreshing against it.

The provider is driven directly, never through the site: these tests hold the provider
to what a relying party expects, so a failure of the site's tests later points at the site.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_django.utils import load_strategy

from tests.conftest import DEMO_CLIENT, OIDC_CLIENT
from tests.provider import LoopbackProvider

TIMEOUT = 15
REDIRECT_URI = "http://127.0.0.1:8000/complete/oidc/"
# Given on the command line (--redirect-uri), as a site on another port would need.
EXTRA_REDIRECT_URI = "http://127.0.0.1:8123/complete/idp/"
FULL_SCOPE = "openid profile email"
ALICE_CLAIMS = {
    "sub": "user_alice",
    "preferred_username": "alice",
    "email": "alice@demo.example",
    "email_verified": True,
    "name": "Alice Demo",
    "given_name": "Alice",
    "family_name": "Demo",
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackProvider]:
    """This module's own provider process, started with an extra redirect URI."""
    db_path = tmp_path_factory.mktemp("oidc_provider") / "provider.sqlite3"
    with LoopbackProvider(db_path=db_path, redirect_uris=[EXTRA_REDIRECT_URI]) as started:
        yield started


@dataclass(frozen=True)
class Login:
    """A finished authorization-code flow: the token response and its verified ID token."""

    tokens: dict[str, Any]
    claims: dict[str, Any]
    nonce: str


def discovery(provider: LoopbackProvider) -> dict[str, Any]:
    response = requests.get(
        f"{provider.base_url}/.well-known/openid-configuration", timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()


def verify(provider: LoopbackProvider, id_token: str) -> dict[str, Any]:
    """Check the ID token's signature against the published JWKS (by kid), its issuer,
    audience and expiry, the way any relying party would; return its claims."""
    jwks_uri = discovery(provider)["jwks_uri"]
    key_set = jwt.PyJWKSet.from_dict(requests.get(jwks_uri, timeout=TIMEOUT).json())
    kid = jwt.get_unverified_header(id_token)["kid"]
    (key,) = [key for key in key_set.keys if key.key_id == kid]
    return jwt.decode(
        id_token,
        key.key,
        algorithms=["RS256"],
        audience=OIDC_CLIENT[0],
        issuer=provider.base_url,
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def token_call(provider: LoopbackProvider, data: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{provider.base_url}/oauth2/token", data=data, auth=OIDC_CLIENT, timeout=TIMEOUT
    )


def log_in(provider: LoopbackProvider, username: str = "alice", scope: str = FULL_SCOPE) -> Login:
    """The code flow a relying party runs: state, nonce and PKCE S256, consent through the
    demo's pages, the code exchanged with HTTP Basic client authentication."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(16)
    params = {
        "client_id": OIDC_CLIENT[0],
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    url = f"{discovery(provider)['authorization_endpoint']}?{urlencode(params)}"
    callback = parse_qs(urlsplit(provider.authorize(url, username=username)).query)
    assert callback["state"] == [state], callback
    response = token_call(
        provider,
        {
            "grant_type": "authorization_code",
            "code": callback["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    return Login(tokens, verify(provider, tokens["id_token"]), nonce)


def refresh(provider: LoopbackProvider, refresh_token: str) -> requests.Response:
    return token_call(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def userinfo(provider: LoopbackProvider, access_token: str) -> requests.Response:
    return requests.get(
        discovery(provider)["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=TIMEOUT,
    )


# -- discovery and keys --------------------------------------------------------------


def test_discovery_names_the_provider_as_issuer_and_its_own_endpoints(
    provider: LoopbackProvider,
) -> None:
    base = provider.base_url
    document = discovery(provider)

    assert document["issuer"] == base
    assert {
        key: document[key]
        for key in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "revocation_endpoint",
        )
    } == {
        "authorization_endpoint": f"{base}/oauth2/authorize/",
        "token_endpoint": f"{base}/oauth2/token",
        "userinfo_endpoint": f"{base}/oauth2/userinfo",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "revocation_endpoint": f"{base}/oauth2/revoke_token/",
    }
    for key in (
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ):
        assert {"client_secret_basic", "client_secret_post"} <= set(document[key])
    assert "RS256" in document["id_token_signing_alg_values_supported"]
    assert document["response_types_supported"] == ["code"]
    assert document["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["subject_types_supported"] == ["public"]
    assert {"openid", "profile", "email", "read", "write"} <= set(document["scopes_supported"])
    assert set(ALICE_CLAIMS) <= set(document["claims_supported"])


def test_jwks_publishes_one_public_rs256_signing_key(provider: LoopbackProvider) -> None:
    response = requests.get(discovery(provider)["jwks_uri"], timeout=TIMEOUT)

    assert response.status_code == 200
    assert "max-age=" in response.headers["Cache-Control"]
    (key,) = response.json()["keys"]
    assert {key["kty"], key["alg"], key["use"]} == {"RSA", "RS256", "sig"}
    assert key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private key material published"
    jwt.PyJWK(key)  # a usable key


def test_stats_count_discovery_and_jwks_requests_until_reset(provider: LoopbackProvider) -> None:
    document = discovery(provider)
    discovery(provider)
    requests.get(document["jwks_uri"], timeout=TIMEOUT)

    stats = provider.stats()
    assert (stats["discovery_calls"], stats["jwks_calls"]) == (2, 1)
    provider.reset()
    stats = provider.stats()
    assert (stats["discovery_calls"], stats["jwks_calls"]) == (0, 0)


# -- the code flow -------------------------------------------------------------------


def test_code_flow_gives_a_signed_id_token_for_the_user(provider: LoopbackProvider) -> None:
    before = int(time.time())
    login = log_in(provider)

    claims = login.claims
    assert claims["iss"] == provider.base_url
    assert claims["aud"] == OIDC_CLIENT[0]
    assert claims["nonce"] == login.nonce
    assert claims["at_hash"] == at_hash(login.tokens["access_token"])
    assert before - 5 <= claims["iat"] <= time.time() + 5 < claims["exp"]
    assert claims["auth_time"] <= claims["iat"]
    assert {key: claims[key] for key in ALICE_CLAIMS} == ALICE_CLAIMS
    assert login.tokens["refresh_token"]
    assert set(login.tokens["scope"].split()) == {"openid", "profile", "email"}
    assert provider.stats()["token_calls"]["authorization_code"] == 1


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://testserver/complete/oidc/",
        "http://localhost:8000/complete/idp/",
        "http://127.0.0.1:8000/admin/social_django/usersocialauth/connect/complete/idp/",
        EXTRA_REDIRECT_URI,
    ],
)
def test_the_oidc_client_has_the_sites_redirect_uris(
    provider: LoopbackProvider, redirect_uri: str
) -> None:
    params = {
        "client_id": OIDC_CLIENT[0],
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": FULL_SCOPE,
        "state": "s",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    location = provider.authorize(f"{provider.base_url}/oauth2/authorize/?{urlencode(params)}")

    assert location.startswith(f"{redirect_uri}?")
    assert "code" in parse_qs(urlsplit(location).query)


def test_userinfo_answers_the_same_claims(provider: LoopbackProvider) -> None:
    login = log_in(provider, "bob")

    response = userinfo(provider, login.tokens["access_token"])

    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": "user_bob",
        "preferred_username": "bob",
        "email": "bob@demo.example",
        "email_verified": True,
        "name": "Bob Demo",
        "given_name": "Bob",
        "family_name": "Demo",
    }
    assert login.claims["sub"] == "user_bob"
    assert userinfo(provider, "not-a-token").status_code == 401


def test_claims_follow_the_granted_scopes(provider: LoopbackProvider) -> None:
    login = log_in(provider, "carol", scope="openid")

    assert login.claims["sub"] == "user_carol"
    assert not set(login.claims) & {"email", "name", "preferred_username"}
    assert userinfo(provider, login.tokens["access_token"]).json() == {"sub": "user_carol"}


def test_the_plain_oauth_clients_get_no_openid(provider: LoopbackProvider) -> None:
    """The demo client's tokens stay as they were, and it may not ask for an ID token (it
    has no signing algorithm: DOT would fail half-way through the token call)."""
    params = {
        "client_id": DEMO_CLIENT[0],
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:8000/complete/demo/",
        "scope": "openid",
        "state": "s",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    location = provider.authorize(f"{provider.base_url}/oauth2/authorize/?{urlencode(params)}")

    assert parse_qs(urlsplit(location).query)["error"] == ["invalid_scope"]
    (grant,) = provider.bulk_grant(1, prefix="plain")
    assert "id_token" not in grant


# -- refresh and revocation ------------------------------------------------------------


def test_refresh_rotates_and_returns_a_valid_id_token(provider: LoopbackProvider) -> None:
    login = log_in(provider)

    response = refresh(provider, login.tokens["refresh_token"])

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["refresh_token"] != login.tokens["refresh_token"]
    claims = verify(provider, tokens["id_token"])
    # OpenID Connect Core 12.2: the same person, client and issuer, a new iat, no nonce.
    # auth_time may only repeat the original authentication's; the demo leaves it out
    # rather than give the user's latest login.
    assert {key: claims[key] for key in ("iss", "sub", "aud")} == {
        key: login.claims[key] for key in ("iss", "sub", "aud")
    }
    assert claims["at_hash"] == at_hash(tokens["access_token"])
    assert claims["iat"] >= login.claims["iat"]
    assert "nonce" not in claims
    assert "auth_time" not in claims
    assert userinfo(provider, tokens["access_token"]).json()["sub"] == "user_alice"


def test_replaying_a_rotated_refresh_token_revokes_the_family(provider: LoopbackProvider) -> None:
    login = log_in(provider)
    rotated = refresh(provider, login.tokens["refresh_token"]).json()

    replay = refresh(provider, login.tokens["refresh_token"])

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert refresh(provider, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    assert provider.stats()["refresh_rejected"] == 2


@pytest.mark.parametrize("authentication", ["basic", "body"])
def test_revocation_accepts_basic_and_body_client_authentication(
    provider: LoopbackProvider, authentication: str
) -> None:
    login = log_in(provider)
    data = {"token": login.tokens["refresh_token"], "token_type_hint": "refresh_token"}
    if authentication == "basic":
        kwargs: dict[str, Any] = {"data": data, "auth": OIDC_CLIENT}
    else:
        kwargs = {"data": {**data, "client_id": OIDC_CLIENT[0], "client_secret": OIDC_CLIENT[1]}}

    response = requests.post(discovery(provider)["revocation_endpoint"], timeout=TIMEOUT, **kwargs)

    assert response.status_code == 200, response.text
    assert refresh(provider, login.tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo(provider, login.tokens["access_token"]).status_code == 401
    assert provider.stats()["revoke_calls"] == 1


# -- social-core's stock backend -------------------------------------------------------


@pytest.fixture
def stock_backend(settings, provider: LoopbackProvider) -> Iterator[OpenIdConnectAuth]:
    """social-core's generic OIDC backend, told only the issuer and the client (its caches
    of discovery documents and keys are per process: emptied on both sides of the test)."""
    settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = provider.base_url
    settings.SOCIAL_AUTH_OIDC_KEY, settings.SOCIAL_AUTH_OIDC_SECRET = OIDC_CLIENT
    settings.SOCIAL_AUTH_OIDC_USE_PKCE = True
    caches = (OpenIdConnectAuth.get_openid_configuration, OpenIdConnectAuth.get_jwks_keys_for_uri)
    for cache in caches:
        cache.invalidate()
    yield OpenIdConnectAuth(load_strategy())
    for cache in caches:
        cache.invalidate()


def test_stock_openid_connect_backend_validates_and_refreshes(
    provider: LoopbackProvider, stock_backend: OpenIdConnectAuth
) -> None:
    login = log_in(provider)
    backend = stock_backend
    first = backend.decode_and_validate_id_token(
        login.tokens["id_token"], login.tokens["access_token"]
    )
    backend.validate_required_id_token_claims(first)

    response = backend.refresh_token(login.tokens["refresh_token"])

    assert response["refresh_token"] != login.tokens["refresh_token"]
    assert backend.id_token is not None
    assert backend.id_token["sub"] == "user_alice"
    # The continuity check social-core runs when it stores a refreshed ID token.
    backend.validate_refresh_id_token_claims(backend._id_token_context(first), backend.id_token)
    assert backend.revoke_token_url(None, None) == f"{provider.base_url}/oauth2/revoke_token/"
    assert backend.use_basic_auth()
    stats = provider.stats()
    assert stats["refresh_ok"] == 1
    assert stats["discovery_calls"] >= 1
    assert stats["jwks_calls"] >= 1
