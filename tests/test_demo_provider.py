"""The demo provider, over real HTTP: one provider process for the module.

Only HTTP to the provider: no Django settings of the main site, no database
access from the test process.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from tests.loopback_process import REPO_ROOT
from tests.provider import LoopbackProvider, ProviderError

TIMEOUT = 15
TOKEN_LIFETIME = 600


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    redirect_uri: str
    pkce: bool


DEMO = Client(
    "custodian-demo", "custodian-demo-secret", "http://127.0.0.1:8000/complete/demo/", True
)
MONZO = Client(
    "custodian-monzo", "custodian-monzo-secret", "http://127.0.0.1:8000/complete/monzo/", False
)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackProvider]:
    db_path = tmp_path_factory.mktemp("demo_provider") / "provider.sqlite3"
    with LoopbackProvider(db_path=db_path, token_lifetime=TOKEN_LIFETIME) as started:
        yield started


@pytest.fixture(autouse=True)
def clean_controls(provider: LoopbackProvider) -> None:
    provider.reset()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def authorization_url(
    provider: LoopbackProvider,
    client: Client,
    state: str,
    challenge: str | None,
    redirect_uri: str | None = None,
) -> str:
    params = {
        "client_id": client.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri or client.redirect_uri,
        "state": state,
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return f"{provider.base_url}/oauth2/authorize/?{urlencode(params)}"


def callback_params(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def token_call(
    provider: LoopbackProvider,
    client: Client,
    data: dict[str, str],
    *,
    basic: bool = False,
    path: str = "/oauth2/token",
    timeout: float = TIMEOUT,
) -> requests.Response:
    """A token request, authenticating by HTTP Basic or client_secret_post."""
    if basic:
        return requests.post(
            f"{provider.base_url}{path}",
            data=data,
            auth=(client.client_id, client.secret),
            timeout=timeout,
        )
    credentials = {"client_id": client.client_id, "client_secret": client.secret}
    return requests.post(
        f"{provider.base_url}{path}", data={**data, **credentials}, timeout=timeout
    )


def connect(
    provider: LoopbackProvider,
    client: Client,
    username: str = "alice",
    *,
    redirect_uri: str | None = None,
) -> dict[str, Any]:
    """The whole authorization-code flow; returns the token response."""
    verifier, challenge = pkce_pair() if client.pkce else (None, None)
    state = secrets.token_urlsafe(8)
    location = provider.authorize(
        authorization_url(provider, client, state, challenge, redirect_uri), username=username
    )
    params = callback_params(location)
    assert params["state"] == state
    data = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": redirect_uri or client.redirect_uri,
    }
    if verifier:
        data["code_verifier"] = verifier
    response = token_call(provider, client, data)
    assert response.status_code == 200, response.text
    return response.json()


def refresh(
    provider: LoopbackProvider,
    client: Client,
    refresh_token: str,
    timeout: float = TIMEOUT,
) -> requests.Response:
    return token_call(
        provider,
        client,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=timeout,
    )


def api(provider: LoopbackProvider, path: str, access_token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    return requests.get(f"{provider.base_url}{path}", headers=headers, timeout=TIMEOUT)


# -- authorization-code flow ---------------------------------------------------------


def test_demo_client_code_flow_with_pkce_and_basic_auth(provider: LoopbackProvider) -> None:
    verifier, challenge = pkce_pair()
    location = provider.authorize(authorization_url(provider, DEMO, "s1", challenge))
    assert location.startswith(DEMO.redirect_uri)
    params = callback_params(location)
    assert params["state"] == "s1"

    response = token_call(
        provider,
        DEMO,
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": DEMO.redirect_uri,
            "code_verifier": verifier,
        },
        basic=True,
        path="/oauth2/token/",
    )

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["user_id"] == "user_alice"
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == TOKEN_LIFETIME
    assert tokens["refresh_token"] and tokens["access_token"]
    whoami = api(provider, "/ping/whoami", tokens["access_token"])
    assert whoami.json() == {
        "authenticated": True,
        "client_id": DEMO.client_id,
        "user_id": "user_alice",
        "username": "alice",
    }
    assert provider.stats()["token_calls"]["authorization_code"] == 1


def test_demo_client_refuses_authorization_without_pkce(provider: LoopbackProvider) -> None:
    location = provider.authorize(authorization_url(provider, DEMO, "s2", challenge=None))

    params = callback_params(location)
    assert params["error"] == "invalid_request"
    assert "code" not in params


def test_demo_client_rejects_a_wrong_code_verifier(provider: LoopbackProvider) -> None:
    _, challenge = pkce_pair()
    code = callback_params(provider.authorize(authorization_url(provider, DEMO, "s", challenge)))[
        "code"
    ]

    response = token_call(
        provider,
        DEMO,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DEMO.redirect_uri,
            "code_verifier": pkce_pair()[0],
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_monzo_client_code_flow_without_pkce(provider: LoopbackProvider) -> None:
    tokens = connect(provider, MONZO, "bob")

    assert tokens["user_id"] == "user_bob"
    assert tokens["refresh_token"]
    assert tokens["expires_in"] == TOKEN_LIFETIME
    whoami = api(provider, "/ping/whoami", tokens["access_token"]).json()
    assert whoami["client_id"] == MONZO.client_id


def test_deny_redirects_with_access_denied(provider: LoopbackProvider) -> None:
    location = provider.authorize(authorization_url(provider, MONZO, "s3", None), allow=False)

    assert callback_params(location) == {"error": "access_denied", "state": "s3"}


def test_wrong_password_is_reported(provider: LoopbackProvider) -> None:
    with pytest.raises(ProviderError, match="login"):
        provider.authorize(authorization_url(provider, MONZO, "s", None), password="nope")


def test_redirect_uri_added_through_the_control_plane(provider: LoopbackProvider) -> None:
    uri = "http://site.example/complete/monzo/"
    with pytest.raises(ProviderError):
        provider.authorize(authorization_url(provider, MONZO, "s", None, uri))

    provider.add_redirect_uri(MONZO.client_id, uri)

    assert connect(provider, MONZO, redirect_uri=uri)["access_token"]


# -- refresh ---------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(provider: LoopbackProvider) -> None:
    first = connect(provider, DEMO)

    rotated = refresh(provider, DEMO, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user_id"] == "user_alice"
    assert api(provider, "/ping/whoami", second["access_token"]).status_code == 200

    reused = refresh(provider, DEMO, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # Reuse protection: the rotated token died with the family.
    after_reuse = refresh(provider, DEMO, second["refresh_token"])
    assert after_reuse.status_code == 400
    assert api(provider, "/ping/whoami", second["access_token"]).status_code == 401
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 3
    assert (stats["refresh_ok"], stats["refresh_rejected"]) == (1, 2)


def test_invalid_grant_is_rfc_shaped_for_generic_client(provider: LoopbackProvider) -> None:
    response = refresh(provider, DEMO, "not-a-refresh-token")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_invalid_grant_is_monzo_shaped_for_monzo_client(provider: LoopbackProvider) -> None:
    response = refresh(provider, MONZO, "not-a-refresh-token")

    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "unauthorized.bad_refresh_token"
    assert body["message"]
    assert "error" not in body


def test_expired_access_token_is_refused_but_refreshable(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO, "alice")

    provider.expire_access("alice")

    assert api(provider, "/ping/whoami", tokens["access_token"]).status_code == 401
    renewed = refresh(provider, DEMO, tokens["refresh_token"])
    assert renewed.status_code == 200
    assert api(provider, "/ping/whoami", renewed.json()["access_token"]).status_code == 200


def test_revoke_grant_kills_access_and_refresh_tokens(provider: LoopbackProvider) -> None:
    tokens = connect(provider, MONZO, "bob")

    provider.revoke_grant("bob")

    assert api(provider, "/ping/whoami", tokens["access_token"]).status_code == 401
    response = refresh(provider, MONZO, tokens["refresh_token"])
    assert response.json()["code"] == "unauthorized.bad_refresh_token"


# -- API ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_whoami_refuses_missing_or_bad_token(provider: LoopbackProvider, token: str | None) -> None:
    response = api(provider, "/ping/whoami", token)

    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "unauthorized.bad_access_token"
    assert body["error"] == "invalid_token"


def test_accounts_need_approval_for_the_monzo_client_only(provider: LoopbackProvider) -> None:
    generic = connect(provider, DEMO, "carol")
    monzo = connect(provider, MONZO, "carol")

    assert api(provider, "/accounts", generic["access_token"]).status_code == 200
    refused = api(provider, "/accounts", monzo["access_token"])
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden.insufficient_permissions"

    provider.approve("carol")

    accounts = api(provider, "/accounts", monzo["access_token"]).json()["accounts"]
    assert [(a["id"], a["description"]) for a in accounts] == [
        ("acc_carol", "Carol's current account")
    ]
    assert accounts[0]["created"]
    renewed = refresh(provider, MONZO, monzo["refresh_token"]).json()
    assert api(provider, "/accounts", renewed["access_token"]).status_code == 200


def test_approve_page_approves_the_pending_client(provider: LoopbackProvider) -> None:
    tokens = connect(provider, MONZO, "alice")
    with requests.Session() as browser:
        login = browser.get(f"{provider.base_url}/approve/", timeout=TIMEOUT)
        assert urlsplit(login.url).path == "/login/"
        page = browser.post(
            urljoin(login.url, "/login/"),
            timeout=TIMEOUT,
            data={
                "csrfmiddlewaretoken": browser.cookies["demo_provider_csrftoken"],
                "username": "alice",
                "password": "demo",
                "next": "/approve/",
            },
        )
        assert "waiting for your approval" in page.text
        assert api(provider, "/accounts", tokens["access_token"]).status_code == 403

        approved = browser.post(
            f"{provider.base_url}/approve/",
            timeout=TIMEOUT,
            data={
                "csrfmiddlewaretoken": browser.cookies["demo_provider_csrftoken"],
                "client_id": MONZO.client_id,
            },
        )

        assert "Nothing is waiting for your approval" in approved.text
    assert api(provider, "/accounts", tokens["access_token"]).status_code == 200


def test_logout_revokes_access_and_refresh_tokens(provider: LoopbackProvider) -> None:
    tokens = connect(provider, MONZO, "bob")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    response = requests.post(f"{provider.base_url}/oauth2/logout", headers=headers, timeout=TIMEOUT)

    assert (response.status_code, response.json()) == (200, {})
    assert api(provider, "/ping/whoami", tokens["access_token"]).status_code == 401
    assert refresh(provider, MONZO, tokens["refresh_token"]).status_code == 401
    again = requests.post(f"{provider.base_url}/oauth2/logout", headers=headers, timeout=TIMEOUT)
    assert again.status_code == 401
    assert provider.stats()["logout_calls"] == 2


def test_rfc7009_revocation_of_the_refresh_token(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO, "bob")

    response = requests.post(
        f"{provider.base_url}/oauth2/revoke_token/",
        timeout=TIMEOUT,
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
        },
        auth=(DEMO.client_id, DEMO.secret),
    )

    assert response.status_code == 200
    assert refresh(provider, DEMO, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert provider.stats()["revoke_calls"] == 1


# -- faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "content_type", "body"),
    [
        ("server_error", 500, "application/json", '{"error": "server_error"}'),
        ("rate_limited", 429, "application/json", None),
        ("garbage", 200, "text/html", "<html>oops</html>"),
        ("no_access_token", 200, "application/json", '{"token_type": "Bearer"}'),
    ],
)
def test_fault_replaces_one_refresh_and_leaves_the_token_usable(
    provider: LoopbackProvider,
    mode: str,
    status: int,
    content_type: str,
    body: str | None,
) -> None:
    tokens = connect(provider, DEMO)
    provider.fault(mode)

    faulted = refresh(provider, DEMO, tokens["refresh_token"])

    assert faulted.status_code == status
    assert faulted.headers["Content-Type"].startswith(content_type)
    if body is not None:
        assert faulted.text == body
    assert refresh(provider, DEMO, tokens["refresh_token"]).status_code == 200
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 2
    assert (stats["refresh_ok"], stats["refresh_rejected"]) == (1, 0)


def test_timeout_fault_outlasts_the_client(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO)
    provider.fault("timeout")

    with pytest.raises(requests.exceptions.Timeout):
        refresh(provider, DEMO, tokens["refresh_token"], timeout=1)

    assert refresh(provider, DEMO, tokens["refresh_token"]).status_code == 200


def test_drop_refresh_token_keeps_the_old_refresh_token_working(provider: LoopbackProvider) -> None:
    tokens = connect(provider, MONZO)
    provider.fault("drop_refresh_token")

    dropped = refresh(provider, MONZO, tokens["refresh_token"])

    assert dropped.status_code == 200
    body = dropped.json()
    assert "refresh_token" not in body
    assert body["user_id"] == "user_alice"
    assert api(provider, "/ping/whoami", body["access_token"]).status_code == 200
    rotated = refresh(provider, MONZO, tokens["refresh_token"])
    assert rotated.status_code == 200
    new_refresh_token = rotated.json()["refresh_token"]
    assert new_refresh_token != tokens["refresh_token"]
    assert refresh(provider, MONZO, new_refresh_token).status_code == 200


def test_fault_without_count_lasts_until_reset(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO)
    provider.fault("server_error", count=None)

    assert [refresh(provider, DEMO, tokens["refresh_token"]).status_code for _ in range(3)] == [
        500
    ] * 3

    provider.reset()
    assert refresh(provider, DEMO, tokens["refresh_token"]).status_code == 200


def test_fault_only_hits_its_grant_type(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO)
    provider.fault("server_error", count=None, grant_type="authorization_code")
    verifier, challenge = pkce_pair()
    code = callback_params(provider.authorize(authorization_url(provider, DEMO, "s", challenge)))[
        "code"
    ]

    exchange = token_call(
        provider,
        DEMO,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DEMO.redirect_uri,
            "code_verifier": verifier,
        },
    )

    assert exchange.status_code == 500
    assert refresh(provider, DEMO, tokens["refresh_token"]).status_code == 200


def test_latency_delays_token_calls(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO)
    provider.latency(300)

    started = time.monotonic()
    assert refresh(provider, DEMO, tokens["refresh_token"]).status_code == 200

    assert time.monotonic() - started >= 0.3


# -- concurrency and the control plane ------------------------------------------------


def test_concurrent_refreshes_are_all_processed_and_counted(provider: LoopbackProvider) -> None:
    users = ["alice", "bob", "carol"]
    with ThreadPoolExecutor(max_workers=5) as pool:
        sessions = list(pool.map(lambda i: connect(provider, DEMO, users[i % 3]), range(20)))
    assert provider.stats()["token_calls"]["authorization_code"] == 20
    provider.reset()
    barrier = threading.Barrier(20)

    def refresh_when_all_ready(tokens: dict[str, Any]) -> requests.Response:
        barrier.wait(timeout=TIMEOUT)
        return refresh(provider, DEMO, tokens["refresh_token"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(refresh_when_all_ready, sessions))

    assert [r.status_code for r in responses] == [200] * 20
    assert len({r.json()["refresh_token"] for r in responses}) == 20
    stats = provider.stats()
    assert stats["token_calls"] == {"authorization_code": 0, "refresh_token": 20}
    assert (stats["refresh_ok"], stats["refresh_rejected"]) == (20, 0)


def test_control_plane_is_absent_without_the_env_switch(tmp_path: Path) -> None:
    with LoopbackProvider(
        db_path=tmp_path / "plain.sqlite3", env={"DEMO_PROVIDER_TEST_CONTROLS": "0"}
    ) as plain:
        assert requests.get(f"{plain.base_url}/_control/stats", timeout=TIMEOUT).status_code == 404
        reset = requests.post(f"{plain.base_url}/_control/reset", timeout=TIMEOUT)
        assert reset.status_code == 404
        assert requests.get(f"{plain.base_url}/ping/whoami", timeout=TIMEOUT).status_code == 401


@pytest.mark.parametrize(
    ("switch", "algorithm"), [(None, "pbkdf2_sha256"), ("1", "md5")], ids=["default", "tests"]
)
def test_fast_password_hashing_only_when_asked(switch: str | None, algorithm: str) -> None:
    """The harness asks for MD5 (the suite logs in hundreds of times); started any other way
    (`make run`), the provider keeps Django's deliberately slow default."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEMO_PROVIDER_")}
    if switch is not None:
        env["DEMO_PROVIDER_FAST_PASSWORD_HASHING"] = switch
    env["DJANGO_SETTINGS_MODULE"] = "demo_provider.settings"
    code = (
        "import django; django.setup(); from django.contrib.auth.hashers import get_hasher; "
        "print(get_hasher().algorithm)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == algorithm
