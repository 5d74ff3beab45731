"""Declarations that fit real providers: the knobs (backends/declaration.py), checked by
`manage.py check`, and a declaration using them against the real OAuth server on loopback."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from social_django.models import UserSocialAuth

from backends.declaration import problems
from backends.profiles import fill
from integrations import ReauthRequired, get_session, refresh
from integrations.psa.disconnect import disconnect
from integrations.store.credentials import read_credentials
from tests.conftest import DEMO_CLIENT, connect

VALID = {
    "authorization_url": "https://acme.example/authorize",
    "token_url": "https://acme.example/token",
    "api_base_url": "https://api.acme.example",
}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"revocaton": {}}, "CUSTODIAN_PROVIDERS['acme'] has an unknown key 'revocaton' "
                            "(did you mean 'revocation'?)"),
        ({"scopes": "read"}, "CUSTODIAN_PROVIDERS['acme']['scopes'] must be a list of strings, "
                             "not a string"),
        ({"pkce": "true"}, "CUSTODIAN_PROVIDERS['acme']['pkce'] must be true or false"),
        ({"token_body": "xml"}, "CUSTODIAN_PROVIDERS['acme']['token_body'] must be one of "
                                "form, json"),
        ({"userinfo_method": "PUT"}, "['userinfo_method'] must be one of GET, POST"),
        ({"revocation": {"url": "https://acme.example/revoke", "placement": "header"}},
         "CUSTODIAN_PROVIDERS['acme']['revocation']['placement'] must be one of form, json, "
         "query, bearer"),
        ({"revocation": {"url": "https://acme.example/revoke", "auth": "mtls"}},
         "['revocation']['auth'] must be one of basic, post, none"),
        ({"revocation": {"method": "POST"}}, "['revocation']['url'] is required"),
        ({"revocation": {"url": "https://acme.example/r", "tokn": "access"}},
         "['revocation'] has an unknown key 'tokn' (did you mean 'token'?)"),
        ({"api_base_url": "{instance_url}/services/data/v60.0"},
         "CUSTODIAN_PROVIDERS['acme']['api_base_url'] names {instance_url}, which is not in "
         "CUSTODIAN_PROVIDERS['acme']['capture']"),
        ({"keepalive": -5}, "['keepalive'] must be a positive number of seconds"),
        ({"error_rules": {"reconect": []}}, "['error_rules'] has an unknown key 'reconect'"),
        ({"error_rules": {"error_when": 3}}, "['error_rules']['error_when'] must be an object"),
        ({"revocation_url": "https://a.example/r", "revocation": {"url": "https://a.example/r"}},
         "has both revocation and revocation_url"),
        ({"headers": {"Notion-Version": 2022}}, "['headers'] must be an object of strings"),
        ({"api_hosts": ["https://files.example/x"]}, "['api_hosts'] must be a list of origins"),
        ({"connected_apps_url": "javascript:alert(1)"},
         "CUSTODIAN_PROVIDERS['acme']['connected_apps_url'] must be an https:// URL of the "
         "provider's page (http:// only on loopback"),
        ({"connected_apps_url": "http://acme.example/apps"},
         "['connected_apps_url'] must be an https:// URL"),
        ({"sign_out_url": "https://acme.example/log out"}, "['sign_out_url'] must be an https://"),
        ({"sign_out_url": "//acme.example/logout"}, "['sign_out_url'] must be an https://"),
        ({"sign_out_url": ["https://acme.example/logout"]},
         "['sign_out_url'] must be a string, not a list"),
        ({"select_account": {"prompt": 1}}, "['select_account'] must be an object of strings"),
        ({"select_account": {"redirect_uri": "https://evil.example/"}},
         "['select_account'] must not set 'redirect_uri': the protocol sets it"),
    ],
)
def test_check_names_the_bad_knob(settings, extra, message):
    settings.CUSTODIAN_PROVIDERS = {"acme": {**VALID, **extra}}
    assert any(message in problem for problem in problems("acme", {**VALID, **extra}))
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert message in str(raised.value)


def test_every_problem_is_reported_at_once():
    found = problems("acme", {"token_url": 3, "scopes": "x", "revocation": {"placement": "no"}})
    assert len(found) >= 4  # type, type, missing keys, revocation url and placement


def test_a_declaration_using_every_knob_passes(settings):
    declaration = {
        **VALID,
        "api_base_url": "{instance_url}/services/data/v60.0",
        "auth_params": {"token_access_type": "offline"},
        "scope_separator": ",",
        "token_body": "json",
        "token_response_path": "authed_user",
        "userinfo_url": "https://acme.example/me",
        "userinfo_method": "POST",
        "id_key": "owner.user.id",
        "headers": {"Acme-Version": "2"},
        "capture": ["instance_url", "realmId"],
        "revocation": {"url": "https://acme.example/revoke", "method": "DELETE",
                       "token": "access", "placement": "json", "auth": "basic"},
        "error_rules": {"error_when": {"ok": False}, "code_key": "error",
                        "reconnect": ["invalid_refresh_token"]},
        "keepalive": 86400,
        "refresh_token_expires_key": "x_refresh_token_expires_in",
        "token_auth": "client_secret_basic",
        "connected_apps_url": "https://acme.example/settings/apps",
        "sign_out_url": "https://acme.example/logout",
        "select_account": {"prompt": "login"},
    }
    assert problems("acme", declaration) == []
    settings.CUSTODIAN_PROVIDERS = {"acme": declaration}
    call_command("check")  # no SystemCheckError


def test_templates_fill_from_captured_fields_and_never_move_the_host():
    assert fill("{instance_url}/services/data/v60.0", {"instance_url": "https://eu1.my.example"}
                ) == "https://eu1.my.example/services/data/v60.0"
    assert fill("https://qb.example/v3/company/{realmId}", {"realmId": "4620816365"}
                ) == "https://qb.example/v3/company/4620816365"
    # A value in the middle is percent-encoded: it cannot become a host or another path.
    assert fill("https://qb.example/v3/company/{realmId}", {"realmId": "1@evil.example/../x"}
                ) == "https://qb.example/v3/company/1%40evil.example%2F..%2Fx"
    assert fill("{instance_url}/x", {"instance_url": "javascript:alert(1)"}) == ""
    assert fill("https://qb.example/{realmId}", {}) == ""


# --- against the real OAuth server on loopback ----------------------------------------------


@pytest.fixture
def plain(settings, provider, enable_backends):
    """A provider declared without a userinfo endpoint (the id comes from the token
    response), with HTTP Basic client authentication and refresh-token revocation."""
    settings.CUSTODIAN_PROVIDERS = {
        **settings.CUSTODIAN_PROVIDERS,
        "plain": {
            "title": "Plain",
            "authorization_url": f"{provider.base_url}/oauth2/authorize/",
            "token_url": f"{provider.base_url}/oauth2/token",
            "api_base_url": provider.base_url,
            "id_key": "user_id",
            "token_auth": "client_secret_basic",
            "auth_params": {"prompt": "consent", "ui_locales": "en"},
            "scopes": ["read", "write"],
            "headers": {"Acme-Version": "2024-01"},
            "revocation": {
                "url": f"{provider.base_url}/oauth2/revoke_token/",
                "token": "refresh",
                "auth": "basic",
                "hint": True,
            },
            "keepalive": 3 * 86400,
            "client_id": DEMO_CLIENT[0],
            "client_secret": DEMO_CLIENT[1],
        },
    }
    provider.add_redirect_uri(DEMO_CLIENT[0], "http://testserver/complete/plain/")
    enable_backends("backends.declared.plain")


@pytest.mark.django_db
def test_declared_without_userinfo_logs_in_works_and_revokes(client, provider, plain):
    begin = client.post("/login/plain/")
    query = parse_qs(urlsplit(begin["Location"]).query)
    assert query["scope"] == ["read write"]
    assert query["prompt"] == ["consent"] and query["ui_locales"] == ["en"]  # auth_params

    response = connect(client, provider, "plain")
    assert response.status_code == 302, response.content[:300]
    association = UserSocialAuth.objects.get(provider="plain")
    assert association.uid == "user_alice"  # from the token response: no userinfo call
    stats = provider.stats()
    assert stats["client_auth"] == {"basic": 1, "body": 0}  # HTTP Basic at the token endpoint

    session = get_session(association.user, "plain")
    answer = session.get("/ping/whoami")
    assert answer.json()["user_id"] == "user_alice"
    assert answer.request.headers["Acme-Version"] == "2024-01"  # `headers` on API calls

    refresh(association, force=True)
    assert provider.stats()["client_auth"] == {"basic": 2, "body": 0}
    association.refresh_from_db()
    refresh_token = read_credentials(association.extra_data).refresh_token

    outcome = disconnect(association)
    assert outcome.revoked is True
    stats = provider.stats()
    assert stats["revoke_calls"] == 1 and stats["client_auth"]["basic"] == 3
    dead = requests.post(
        f"{provider.base_url}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=DEMO_CLIENT,
        timeout=10,
    )
    assert dead.status_code == 400  # the refresh token was revoked at the provider


@pytest.mark.django_db
def test_scope_separator_joins_the_scopes(client, settings, plain):
    declaration = {**settings.CUSTODIAN_PROVIDERS["plain"], "scope_separator": ","}
    settings.CUSTODIAN_PROVIDERS = {**settings.CUSTODIAN_PROVIDERS, "plain": declaration}
    query = parse_qs(urlsplit(client.post("/login/plain/")["Location"]).query)
    assert query["scope"] == ["read,write"]


@pytest.mark.django_db
def test_keepalive_and_a_dead_refresh_token_are_honoured(client, provider, plain):
    from integrations.providers.registry import keepalive_periods
    from integrations.store.writes import merge_extra_data

    assert keepalive_periods()["plain"] == 3 * 86400
    connect(client, provider, "plain")
    association = UserSocialAuth.objects.get(provider="plain")
    merge_extra_data(association.pk, {"refresh_token_expires_at": 2_000_000_000})
    association.refresh_from_db()
    with time_machine.travel(2_000_000_001, tick=False), pytest.raises(ReauthRequired) as raised:
        refresh(association, force=True)
    assert raised.value.reason == "refresh_token_expired"
    assert provider.stats()["token_calls"]["refresh_token"] == 0  # never sent


def test_the_declarations_in_the_docs_pass_the_check():
    """Every JSON declaration shown in docs/adding-a-provider.md and the README is valid."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    guide = (root / "docs" / "adding-a-provider.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", guide, flags=re.S)
    assert blocks
    for block in blocks:
        declaration = json.loads(block.replace("…", ""))
        assert problems("example", declaration) == []
    readme = (root / "README.md").read_text()
    line = re.search(r"CUSTODIAN_PROVIDERS='(\{\"acme\".*?\})'\n", readme, flags=re.S)
    assert line is not None
    assert problems("acme", json.loads(line[1])["acme"]) == []


@pytest.mark.django_db
def test_a_code_key_reads_the_providers_answers_not_the_callback(client, provider, settings,
                                                                  plain):
    """Notion keeps its error code in `code`; the callback's `code` is the authorization code
    and must not be taken for an error."""
    declaration = {
        **settings.CUSTODIAN_PROVIDERS["plain"],
        "error_rules": {"code_key": "code", "reconnect": ["invalid_grant"]},
    }
    settings.CUSTODIAN_PROVIDERS = {**settings.CUSTODIAN_PROVIDERS, "plain": declaration}

    response = connect(client, provider, "plain")

    assert response.status_code == 302, response.content[:300]
    assert UserSocialAuth.objects.filter(provider="plain", uid="user_alice").exists()


@pytest.mark.django_db
def test_a_json_token_body_is_sent_as_json(settings, enable_backends):
    """token_body json: the body and its Content-Type agree (Notion refuses a JSON body that
    calls itself a form)."""
    from social_core.exceptions import SocialAuthBaseException

    from integrations.providers.registry import backend_instance
    from tests.provider_doubles import CLIENT_ID, CLIENT_SECRET, ProviderDouble, Shape

    double = ProviderDouble(Shape(token_url="https://api.acme.example/oauth/token"))
    try:
        settings.CUSTODIAN_PROVIDERS = {
            **settings.CUSTODIAN_PROVIDERS,
            "jsonbody": {
                **VALID,
                "token_url": double.local("https://api.acme.example/oauth/token"),
                "token_body": "json",
                "token_auth": "client_secret_basic",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        }
        enable_backends("backends.declared.jsonbody")
        with pytest.raises(SocialAuthBaseException):  # the double knows no such token
            backend_instance("jsonbody").refresh_token("refresh-1")
    finally:
        double.stop()

    (call,) = double.calls
    assert call.headers["Content-Type"] == "application/json"
    assert call.json == {"grant_type": "refresh_token", "refresh_token": "refresh-1"}
    assert call.basic == (CLIENT_ID, CLIENT_SECRET)


def test_a_declaration_changed_in_place_is_validated_again(settings):
    """Declarations are validated once per content: a change, even in place, is seen."""
    from django.core.exceptions import ImproperlyConfigured

    from backends.declaration import ProviderDeclaration

    raw: dict[str, Any] = {**VALID, "scopes": ["read"]}
    settings.CUSTODIAN_PROVIDERS = {"acme": raw}
    first = ProviderDeclaration.from_settings("acme")
    assert ProviderDeclaration.from_settings("acme") is first  # validated once
    raw["scopes"].append("write")  # in place: the cached declaration must not follow silently
    assert first.scopes == ["read"]
    assert ProviderDeclaration.from_settings("acme").scopes == ["read", "write"]
    raw["token_body"] = "xml"
    with pytest.raises(ImproperlyConfigured, match="token_body"):
        ProviderDeclaration.from_settings("acme")
