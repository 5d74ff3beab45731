"""The catalog's declarations (docs/providers/<name>.json), as documented, through the site.

One harness, a block of data per provider. Each test loads the JSON file exactly as a site
would, changing only its https URLs (to the provider's loopback double, which answers under
the real URLs: tests/catalog_doubles.py) and filling in the client; declares it under its
name; and goes through the real site: the login, get_session against the provider's API,
refresh when due with the provider's rotation, a dead grant, and disconnect with revocation.
The doubles follow docs/providers/doubles.md; what they check they record as failures.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.management import call_command
from social_django.models import UserSocialAuth

from backends.declaration import problems
from backends.profiles import profile_for
from integrations import (
    ForeignHostRefused,
    MultipleAccounts,
    ReauthRequired,
    RefreshFailed,
    get_session,
    refresh,
)
from integrations.models import CredentialEvent
from integrations.providers.registry import keepalive_periods
from integrations.psa.disconnect import disconnect
from integrations.store.credentials import Credentials, read_credentials, seal
from integrations.store.crypto import decrypt
from integrations.store.writes import patch_association
from tests.catalog_doubles import (
    DAY,
    CatalogDouble,
    CatalogShape,
    Revoke,
    Route,
    intuit_error,
    notion_error,
    slack_error,
)
from tests.conftest import CHOICE_URL, choose_account, raw_extra_data
from tests.herd import thread_herd
from tests.provider_doubles import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.django_db
CATALOG = Path(__file__).resolve().parent.parent / "docs" / "providers"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Case:
    """One catalog provider: its double, and what the site should make of it."""

    shape: CatalogShape
    uid: str
    captured: Mapping[str, Any]  # fields stored with the association
    # An API call: (method, relative URL, requests' keyword arguments, the real URL reached).
    call: tuple[str, str, Mapping[str, Any], str]
    # How to get a superseded refresh token: seconds before the rotating refresh, and after
    # it before the old one is sent again.
    superseded: tuple[float, float] = (0, 0)
    reason: str = "invalid_grant"  # the reauth reason of a dead grant
    keepalive: int | None = None

    @property
    def name(self) -> str:
        return self.shape.name


XERO_SCOPE = (
    "openid profile email offline_access accounting.invoices.read accounting.contacts.read "
    "accounting.settings.read"
)
XERO_USER = "a9f2c1d0-3b4e-4f5a-8c6d-7e8f9a0b1c2d"
XERO_TENANT = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58"
XERO_CONNECTIONS = [
    {
        "id": "7cb59f93-2964-421d-bb5e-a0f7a4572a44",
        "authEventId": "d99ecdfe-391d-43d2-b834-17636ba90e8d",
        "tenantId": XERO_TENANT,
        "tenantType": "ORGANISATION",
        "tenantName": "Demo Company (NZ)",
        "createdDateUtc": "2019-12-07T18:46:19.5165400",
        "updatedDateUtc": "2019-12-07T18:46:19.5187840",
    }
]
NOTION_BOT = "2f1e0d9c-8b7a-4c6d-9e5f-4a3b2c1d0e9f"
NOTION_WORKSPACE = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"
NOTION_PERSON = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
NOTION_VERSION = {"Notion-Version": "2025-09-03"}
QB_USER = "b053d994-07d5-468d-b7ee-22e349d2e739"
QB_REALM = "9341453215642571"
QB_COMPANY = "https://quickbooks.api.intuit.com/v3/company"
SLACK_TEAM = {"id": "T0123ABCD", "name": "Example Co"}
SLACK_SCOPE = "channels:read,users:read"
SLACK_COMMON = {"ok": True, "app_id": "A0KRD7HC3", "team": SLACK_TEAM, "enterprise": None,
                "is_enterprise_install": False}
JSON_ACCEPTED = {"Accept": "application/json"}

CASES = [
    Case(
        shape=CatalogShape(
            name="xero",
            authorize_url="https://login.xero.com/identity/connect/authorize",
            expect={"response_type": "code", "scope": XERO_SCOPE},
            callback={"scope": "{scope}", "session_state": "Xk2bq9-opaque"},
            token_url="https://identity.xero.com/connect/token",
            expires_in=1800,
            refresh="grace",
            grace=1800,
            idle_death=60 * DAY,
            offline_scope="offline_access",
            token_extra={"scope": XERO_SCOPE},
            id_token={"iss": "https://identity.xero.com", "sub": XERO_USER},
            userinfo={
                "https://identity.xero.com/connect/userinfo": {
                    "sub": XERO_USER, "xero_userid": XERO_USER,
                    "preferred_username": "ada@example.com", "email": "ada@example.com",
                    "given_name": "Ada", "family_name": "Lovelace", "name": "Ada Lovelace",
                }
            },
            api_error=(401, None),
            routes=(
                Route("GET", "https://api.xero.com/connections", XERO_CONNECTIONS),
                Route(
                    "GET",
                    "https://api.xero.com/api.xro/2.0/Organisation",
                    {"Organisations": [{"OrganisationID": XERO_TENANT, "Name": "Demo Company"}]},
                    needs={"xero-tenant-id": XERO_TENANT, **JSON_ACCEPTED},
                ),
            ),
            revocation=Revoke(
                "https://identity.xero.com/connect/revocation", "refresh", "form", basic=True
            ),
        ),
        uid=XERO_USER,
        captured={},
        call=("GET", "/connections", {}, "https://api.xero.com/connections"),
        superseded=(0, 1800),
        keepalive=15 * DAY,
    ),
    Case(
        shape=CatalogShape(
            name="notion",
            authorize_url="https://api.notion.com/v1/oauth/authorize",
            expect={"response_type": "code", "owner": "user", "scope": None},
            token_url="https://api.notion.com/v1/oauth/token",
            token_body="json",
            expires_in=None,
            refresh="one-time",
            token_type="bearer",
            token_extra={
                "bot_id": NOTION_BOT, "workspace_icon": None,
                "workspace_name": "Ada's workspace", "workspace_id": NOTION_WORKSPACE,
                "owner": {"type": "user", "user": {
                    "object": "user", "id": NOTION_PERSON, "name": "Ada Lovelace",
                    "avatar_url": None, "type": "person",
                    "person": {"email": "ada@example.com"}}},
                "duplicated_template_id": None,
                "request_id": "9b8a7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
            },
            refuse=notion_error,
            error=notion_error(400, "invalid_grant"),
            api_error=notion_error(401, "unauthorized"),
            routes=(
                Route(
                    "POST",
                    "https://api.notion.com/v1/search",
                    {"object": "list", "results": [], "next_cursor": None, "has_more": False},
                    needs=NOTION_VERSION,
                    refused=notion_error(400, "missing_version"),
                ),
            ),
            # Strict: the reference marks Notion-Version as required here too.
            revocation=Revoke(
                "https://api.notion.com/v1/oauth/revoke", "access", "json", basic=True,
                answer=(200, {"request_id": "0f1e2d3c-4b5a-4697-8877-665544332211"}),
                needs=NOTION_VERSION, refused=notion_error(400, "missing_version"),
            ),
        ),
        uid=NOTION_BOT,
        captured={"workspace_id": NOTION_WORKSPACE, "workspace_name": "Ada's workspace",
                  "owner.user.id": NOTION_PERSON},
        call=("POST", "search", {"json": {"page_size": 10}}, "https://api.notion.com/v1/search"),
    ),
    Case(
        shape=CatalogShape(
            name="quickbooks",
            authorize_url="https://appcenter.intuit.com/connect/oauth2",
            expect={"response_type": "code",
                    "scope": "com.intuit.quickbooks.accounting openid profile email"},
            callback={"realmId": QB_REALM},
            token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
            expires_in=3600,
            refresh="daily",
            idle_death=100 * DAY,
            lifetime_key="x_refresh_token_expires_in",
            lifetime=8726400,
            token_type="bearer",
            id_token={"sub": QB_USER, "realmid": QB_REALM},
            refuse=intuit_error,
            error=intuit_error(400, "invalid_grant"),
            userinfo={
                "https://accounts.platform.intuit.com/v1/openid_connect/userinfo": {
                    "sub": QB_USER, "email": "ada@example.com", "emailVerified": True,
                    "givenName": "Ada", "familyName": "Lovelace",
                }
            },
            api_error=(401, None),
            routes=(
                Route(
                    "GET",
                    f"{QB_COMPANY}/{{realmId}}/query",
                    {"QueryResponse": {"CompanyInfo": [{"Id": "1", "CompanyName": "Sandbox"}],
                                       "startPosition": 1, "maxResults": 1}},
                    needs=JSON_ACCEPTED,
                ),
            ),
            revocation=Revoke(
                "https://developer.api.intuit.com/v2/oauth2/tokens/revoke", "refresh", "json",
                basic=True,
            ),
        ),
        uid=QB_USER,
        captured={"realmId": QB_REALM},
        call=("GET", "query", {"params": {"query": "select * from CompanyInfo"}},
              f"{QB_COMPANY}/{QB_REALM}/query"),
        superseded=(DAY, 0),
        keepalive=30 * DAY,
    ),
    Case(
        shape=CatalogShape(
            name="slack_v2",
            authorize_url="https://slack.com/oauth/v2/authorize",
            expect={"user_scope": SLACK_SCOPE, "scope": None},
            pkce=True,
            token_url="https://slack.com/api/oauth.v2.access",
            expires_in=43200,
            refresh="one-time",
            token_type="user",
            token_extra=SLACK_COMMON,
            nest="authed_user",
            nested={"id": "U0123ABCD45", "scope": SLACK_SCOPE},
            refresh_extra={**SLACK_COMMON, "scope": SLACK_SCOPE},
            refuse=slack_error,
            bad_code="invalid_code",
            error=slack_error(200, "invalid_refresh_token"),
            api_error=slack_error(200, "invalid_auth"),
            routes=(
                Route("GET", "https://slack.com/api/conversations.list",
                      {"ok": True, "channels": [], "response_metadata": {"next_cursor": ""}}),
            ),
            revocation=Revoke(
                "https://slack.com/api/auth.revoke", "access", "bearer",
                answer=(200, {"ok": True, "revoked": True}),
                dead=slack_error(200, "invalid_auth"),
            ),
        ),
        uid="U0123ABCD45",
        captured={"team.id": "T0123ABCD", "team.name": "Example Co"},
        call=("GET", "conversations.list", {"params": {"types": "public_channel", "limit": 100}},
              "https://slack.com/api/conversations.list"),
        reason="invalid_refresh_token",
    ),
]


# --- The harness ---------------------------------------------------------------------------


def documented(name: str) -> dict[str, Any]:
    """docs/providers/<name>.json, as a site would load it."""
    return json.loads((CATALOG / f"{name}.json").read_text())


def on_double(name: str, double: CatalogDouble) -> dict[str, Any]:
    """The documented declaration with only its https URLs moved to the double (an
    `api_hosts` origin to its second server, since origins carry no path), and a client."""
    raw = documented(name)
    hosts = set(raw.get("api_hosts", []))

    def moved(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("https://"):
            return double.other_url if value in hosts else double.local(value)
        if isinstance(value, dict):
            return {key: moved(item) for key, item in value.items()}
        if isinstance(value, list):
            return [moved(item) for item in value]
        return value

    return {**moved(raw), "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def declare(case: Case, settings: Any, enable_backends: Any) -> CatalogDouble:
    double = CatalogDouble(case.shape)
    settings.CUSTODIAN_PROVIDERS = {
        **settings.CUSTODIAN_PROVIDERS,
        case.name: on_double(case.name, double),
    }
    enable_backends(f"backends.declared.{case.name}")
    return double


@pytest.fixture
def double(case: Case, settings: Any, enable_backends: Any) -> Iterator[CatalogDouble]:
    double = declare(case, settings, enable_backends)
    yield double
    double.stop()


@pytest.fixture
def dora(client: Any, django_user_model: Any) -> Any:
    """A local user with a password (so disconnecting is allowed), logged in."""
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    return user


def connect(client: Any, case: Case, double: CatalogDouble) -> tuple[UserSocialAuth, str, str]:
    """Log in through the site like a browser, consenting at the double's authorization
    endpoint; return the association, the authorization URL and the callback URL."""
    begin = client.post(f"/login/{case.name}/")
    assert begin.status_code == 302, begin.content[:300]
    location = begin["Location"]
    consent = requests.get(location, allow_redirects=False, timeout=10)
    assert consent.status_code == 302, (consent.text, double.failures)
    callback = consent.headers["Location"]
    done = client.get(callback.removeprefix("http://testserver"))
    if done.get("Location") == CHOICE_URL:  # new here: create the account
        done = choose_account(client, "create")
    association = UserSocialAuth.objects.filter(provider=case.name).order_by("-pk").first()
    assert association is not None, (done.content.decode()[:2000], double.failures)
    return association, location, callback


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def credentials_of(association: UserSocialAuth) -> Credentials:
    association.refresh_from_db()
    return read_credentials(association.extra_data)


def api_call(user: Any, case: Case) -> requests.Response:
    method, url, kwargs, _ = case.call
    return get_session(user, case.name).request(method, url, **kwargs)


# --- The common journey --------------------------------------------------------------------


def test_the_declaration_passes_the_check(case: Case, settings: Any) -> None:
    raw = documented(case.name)
    assert problems(case.name, raw) == []
    # The page's one-line declaration is the JSON file.
    page = (CATALOG / f"{case.name}.md").read_text()
    line = re.search(r"CUSTODIAN_PROVIDERS='(\{.*?\})'\n", page)
    assert line is not None
    assert {**json.loads(line[1])[case.name], "client_id": "", "client_secret": ""} == raw
    client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    settings.CUSTODIAN_PROVIDERS = {**settings.CUSTODIAN_PROVIDERS, case.name: {**raw, **client}}
    call_command("check", stdout=io.StringIO())  # no SystemCheckError


def test_login(case: Case, double: CatalogDouble, client: Any, dora: Any) -> None:
    shape = case.shape
    before = time.time()
    association, location, callback = connect(client, case, double)
    assert double.failures == []

    assert location.split("?")[0] == double.local(shape.authorize_url)
    sent = query_of(location)
    assert sent["client_id"] == CLIENT_ID
    assert sent["redirect_uri"] == f"http://testserver/complete/{case.name}/"
    assert sent["state"]
    for key, value in shape.expect.items():
        assert sent.get(key) == value, key
    assert ("code_challenge" in sent) is shape.pkce
    back = query_of(callback)
    for key in shape.callback:  # realmId, session_state: they came back to the site
        assert back[key], key

    assert association.uid == case.uid
    assert association.user == dora
    access, refresh_token = double.latest()
    credentials = read_credentials(association.extra_data)
    assert (credentials.access_token, credentials.refresh_token) == (access, refresh_token)
    raw = raw_extra_data(association)
    assert access not in raw and refresh_token not in raw
    if "id_token" in association.extra_data:  # Xero's and QuickBooks' are sealed too
        assert decrypt(association.extra_data["id_token"]) not in raw
    if shape.expires_in is None:
        assert credentials.expires_at is None
    else:
        assert before + shape.expires_in - 5 <= credentials.expires_at
        assert credentials.expires_at <= time.time() + shape.expires_in
    for key, value in case.captured.items():
        assert association.extra_data[key] == value, key
    assert "enterprise.id" not in association.extra_data  # Slack's is null: not stored
    assert list(CredentialEvent.objects.values_list("kind", flat=True)) == ["connected"]

    exchange = double.of_kind("token")[0]
    assert exchange.basic == (CLIENT_ID, CLIENT_SECRET)
    fields = exchange.json if shape.token_body == "json" else exchange.form
    content_type = "application/json" if shape.token_body == "json" else FORM
    assert exchange.headers["Content-Type"].startswith(content_type)
    assert fields["grant_type"] == "authorization_code"
    assert fields["redirect_uri"] == f"http://testserver/complete/{case.name}/"
    assert not {"client_id", "client_secret"} & set(fields)
    assert ("code_verifier" in fields) is shape.pkce
    userinfo = double.of_kind("userinfo")
    if shape.userinfo:
        assert userinfo and userinfo[0].headers["Authorization"] == f"Bearer {access}"
        assert userinfo[0].headers["Accept"] == "application/json"
    else:
        assert userinfo == []  # the identity is in the token answer


def test_session_reaches_the_api_at_its_base_with_the_declared_headers(
    case: Case, double: CatalogDouble, client: Any, dora: Any
) -> None:
    connect(client, case, double)
    access, _ = double.latest()
    declared_headers = documented(case.name).get("headers", {})

    response = api_call(dora, case)

    assert response.status_code == 200, response.text
    call = double.calls[-1]
    assert (call.kind, call.url) == ("api", case.call[3])
    assert call.headers["Authorization"] == f"Bearer {access}"
    assert declared_headers.items() <= call.headers.items()
    assert double.failures == []

    session = get_session(dora, case.name)
    seen = len(double.calls)
    for elsewhere in (f"{double.other_url}/steal", "https://attacker.example/steal"):
        with pytest.raises(ForeignHostRefused):
            session.get(elsewhere)
    assert len(double.calls) == seen


def test_refresh_when_due(
    case: Case, double: CatalogDouble, client: Any, dora: Any, time_machine: Any
) -> None:
    shape = case.shape
    association, _, _ = connect(client, case, double)
    before = read_credentials(association.extra_data)
    tokens, apis = len(double.of_kind("token")), len(double.of_kind("api"))

    if before.expires_at is None:
        # Notion gives no lifetime: the API's 401 is what says "refresh".
        double.expire_access_tokens()
    else:
        time_machine.move_to(before.expires_at + 10, tick=False)
    assert api_call(dora, case).status_code == 200

    after = credentials_of(association)
    access, latest_refresh = double.latest()
    assert after.access_token == access != before.access_token
    assert len(double.of_kind("token")) == tokens + 1
    # Refreshed before the call when due; after a 401 otherwise: then exactly one retry.
    assert len(double.of_kind("api")) == apis + (1 if before.expires_at else 2)
    call = double.of_kind("token")[-1]
    assert call.basic == (CLIENT_ID, CLIENT_SECRET)
    fields = call.json if shape.token_body == "json" else call.form
    assert fields == {"grant_type": "refresh_token", "refresh_token": before.refresh_token}
    assert after.refresh_token == latest_refresh  # the newest, always
    if shape.refresh == "daily":
        assert after.refresh_token == before.refresh_token  # less than a day old
    else:
        assert after.refresh_token != before.refresh_token
    if before.expires_at is not None:
        assert after.expires_at == int(time.time()) + shape.expires_in
    if shape.lifetime_key:
        assert association.extra_data["refresh_token_expires_at"] == (
            int(time.time()) + shape.lifetime
        )
    assert double.failures == []
    assert CredentialEvent.objects.filter(kind="refreshed").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "case", [case for case in CASES if case.shape.expires_in], ids=lambda case: case.name
)
def test_a_herd_on_a_due_token_refreshes_once(
    case: Case, double: CatalogDouble, client: Any, time_machine: Any
) -> None:
    """Xero and Slack spend a refresh token on use (QuickBooks after a day): a second refresh
    in the herd would send a spent one."""
    association, _, _ = connect(client, case, double)
    user = association.user
    time_machine.move_to(read_credentials(association.extra_data).expires_at + 10, tick=False)
    tokens = len(double.of_kind("token"))

    results = thread_herd(8, lambda: api_call(user, case).status_code)

    assert results == [200] * 8
    assert len(double.of_kind("token")) == tokens + 1
    assert credentials_of(association).refresh_token == double.latest()[1]
    assert double.failures == []


def test_a_superseded_refresh_token_is_refused(
    case: Case, double: CatalogDouble, client: Any, time_machine: Any
) -> None:
    """What a lost answer or a second deployment leaves behind: the provider refuses the old
    refresh token (after Xero's grace period, after QuickBooks' day), and only a new login
    helps; the stored tokens stay as they were."""
    association, _, _ = connect(client, case, double)
    first = read_credentials(association.extra_data)
    wait, then = case.superseded
    time_machine.move_to(time.time() + wait, tick=False)
    second = refresh(association, force=True)
    assert second.refresh_token != first.refresh_token
    time_machine.move_to(time.time() + then, tick=False)
    patch_association(association, seal({"refresh_token": first.refresh_token}))
    stale = credentials_of(association)

    with pytest.raises(ReauthRequired) as raised:
        refresh(association, force=True)

    assert raised.value.reason == case.reason
    assert double.of_kind("token")[-1].status == case.shape.error[0]
    assert credentials_of(association) == Credentials(
        stale.access_token, stale.refresh_token, stale.token_type, stale.scope,
        stale.expires_at, "reauth_required",
    )
    assert double.failures == []


def test_a_dead_grant_asks_for_a_new_login(
    case: Case, double: CatalogDouble, client: Any, dora: Any
) -> None:
    association, _, _ = connect(client, case, double)
    before = read_credentials(association.extra_data)
    double.kill()  # the user removed the app at the provider

    with pytest.raises(ReauthRequired) as raised:
        refresh(association, force=True)

    refused = double.of_kind("token")[-1]
    assert refused.status == case.shape.error[0]  # Slack: 200 with "ok": false
    assert raised.value.reason == case.reason
    after = credentials_of(association)
    assert (after.access_token, after.refresh_token) == (before.access_token,
                                                        before.refresh_token)
    assert association.extra_data["status"] == "reauth_required"
    with pytest.raises(ReauthRequired):
        get_session(dora, case.name)
    assert CredentialEvent.objects.filter(kind="reauth_required").count() == 1


def test_disconnect_revokes_as_documented(
    case: Case, double: CatalogDouble, client: Any, dora: Any
) -> None:
    association, _, _ = connect(client, case, double)
    access, refresh_token = double.latest()
    spec = case.shape.revocation

    outcome = disconnect(association)

    assert outcome.revoked is True, outcome.reason
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    kinds = list(CredentialEvent.objects.order_by("pk").values_list("kind", "detail"))
    assert kinds == [("connected", ""), ("revoked", ""), ("disconnected", "")]
    (call,) = double.of_kind("revoke")
    assert (call.method, call.url, call.query) == (spec.method, spec.url, {})
    token = access if spec.token == "access" else refresh_token
    content_type = call.headers.get("Content-Type", "")
    if spec.placement == "bearer":
        assert call.headers["Authorization"] == f"Bearer {token}"
        assert (call.form, call.json) == ({}, None)
    elif spec.placement == "json":
        assert content_type == "application/json" and call.json == {"token": token}
    else:
        assert content_type == FORM and call.form == {"token": token}
    if spec.basic:
        assert call.basic == (CLIENT_ID, CLIENT_SECRET)
    else:
        assert call.basic is None
    assert documented(case.name).get("headers", {}).items() <= call.headers.items()
    assert not double.token_works(access)  # the provider ended the grant
    assert double.failures == []


def test_declined_consent_connects_nothing(
    case: Case, double: CatalogDouble, client: Any, dora: Any
) -> None:
    double.deny = True
    begin = client.post(f"/login/{case.name}/")
    callback = requests.get(begin["Location"], allow_redirects=False, timeout=10)
    page = client.get(callback.headers["Location"].removeprefix("http://testserver"),
                      follow=True)
    assert page.status_code == 403 and b"declined" in page.content
    assert not UserSocialAuth.objects.filter(provider=case.name).exists()
    assert double.of_kind("token") == []


@pytest.mark.parametrize("case", [case for case in CASES if case.keepalive], ids=lambda c: c.name)
def test_keepalive_keeps_an_idle_grant_alive(
    case: Case, double: CatalogDouble, client: Any, time_machine: Any
) -> None:
    """Xero and QuickBooks let refresh tokens die unused (60 and 100 days): the background
    job refreshes an idle association after the declared keep-alive, so that past the
    provider's limit from the login, the grant still works."""
    assert profile_for(case.name).keepalive == case.keepalive
    assert keepalive_periods()[case.name] == case.keepalive
    association, _, _ = connect(client, case, double)
    start = time.time()

    time_machine.move_to(start + case.keepalive + DAY, tick=False)
    call_command("refresh_tokens", "--concurrency=1", stdout=io.StringIO())
    assert CredentialEvent.objects.filter(kind="refreshed").count() == 1

    time_machine.move_to(start + case.shape.idle_death + DAY, tick=False)
    refresh(association, force=True)  # dead without the keep-alive
    assert double.failures == []


# --- Beyond the common journey --------------------------------------------------------------


def case_named(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


@pytest.fixture
def declared(settings: Any, enable_backends: Any) -> Iterator[Any]:
    """`declared(name)`: the catalog provider `name` on its own double."""
    doubles: list[CatalogDouble] = []

    def _declare(name: str) -> CatalogDouble:
        doubles.append(declare(case_named(name), settings, enable_backends))
        return doubles[-1]

    yield _declare
    for double in doubles:
        double.stop()


def test_xero_a_lost_refresh_answer_is_recovered_within_the_grace_period_only(
    declared: Any, client: Any, dora: Any, time_machine: Any
) -> None:
    case = case_named("xero")
    double = declared("xero")
    association, _, _ = connect(client, case, double)
    before = read_credentials(association.extra_data)
    time_machine.move_to(before.expires_at + 10, tick=False)

    double.drop_next_refresh = True  # Xero rotates; its answer never arrives
    with pytest.raises(RefreshFailed):
        api_call(dora, case)
    assert credentials_of(association).refresh_token == before.refresh_token
    # Within 30 minutes the old refresh token gets the very token set that was lost.
    time_machine.move_to(time.time() + 1799, tick=False)
    recovered = refresh(association, force=True)
    assert (recovered.access_token, recovered.refresh_token) == double.latest()

    # The same loss again, now retried too late.
    double.drop_next_refresh = True
    with pytest.raises(RefreshFailed):
        refresh(association, force=True)
    time_machine.move_to(time.time() + 1800, tick=False)
    with pytest.raises(ReauthRequired) as raised:
        refresh(association, force=True)
    assert raised.value.reason == "refresh_response_lost"
    assert double.failures == []


def test_xero_the_tenant_header_is_the_sites_code_job(
    declared: Any, client: Any, dora: Any
) -> None:
    case = case_named("xero")
    double = declared("xero")
    connect(client, case, double)
    session = get_session(dora, "xero")

    tenants = session.get("/connections").json()
    organisation = session.get(
        "/api.xro/2.0/Organisation", headers={"xero-tenant-id": tenants[0]["tenantId"]}
    )
    assert organisation.status_code == 200
    assert double.calls[-1].headers["xero-tenant-id"] == XERO_TENANT
    assert session.get("/api.xro/2.0/Organisation").status_code == 403  # untouched
    assert CredentialEvent.objects.filter(kind="refreshed").count() == 0


def test_notion_two_workspaces_are_two_accounts(
    declared: Any, client: Any, dora: Any
) -> None:
    case = case_named("notion")
    double = declared("notion")
    first, _, _ = connect(client, case, double)
    double.variant = {"bot_id": "3a2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d",
                      "workspace_id": "8b7c6d5e-4f3a-4b2c-9d0e-1f2a3b4c5d6e",
                      "workspace_name": "Ada's other workspace"}
    second, _, _ = connect(client, case, double)

    assert {first.uid, second.uid} == {NOTION_BOT, double.variant["bot_id"]}
    assert first.pk != second.pk
    assert second.extra_data["owner.user.id"] == first.extra_data["owner.user.id"]
    with pytest.raises(MultipleAccounts):
        get_session(dora, "notion")
    response = get_session(dora, "notion", uid=second.uid).post("search", json={})
    assert response.status_code == 200
    assert double.calls[-1].headers["Authorization"] == f"Bearer {double.latest()[0]}"


def test_quickbooks_a_refresh_token_past_its_lifetime_is_never_sent(
    declared: Any, client: Any, time_machine: Any
) -> None:
    case = case_named("quickbooks")
    double = declared("quickbooks")
    double.shape = dataclasses.replace(double.shape, lifetime=120)
    before = int(time.time())
    association, _, _ = connect(client, case, double)
    assert before + 120 <= association.extra_data["refresh_token_expires_at"] <= time.time() + 120
    tokens = len(double.of_kind("token"))

    time_machine.move_to(time.time() + 121, tick=False)
    with pytest.raises(ReauthRequired) as raised:
        refresh(association, force=True)

    assert raised.value.reason == "refresh_token_expired"
    assert len(double.of_kind("token")) == tokens


def test_quickbooks_a_second_company_replaces_the_first(
    declared: Any, client: Any, dora: Any
) -> None:
    """The association is the Intuit user's (the id cannot come from the callback), so a
    second company replaces the first one's realmId and tokens (quickbooks.md)."""
    case = case_named("quickbooks")
    double = declared("quickbooks")
    first, _, _ = connect(client, case, double)
    double.callback = {"realmId": "4620816365281234"}
    second, _, _ = connect(client, case, double)

    assert second.pk == first.pk
    assert second.extra_data["realmId"] == "4620816365281234"
    response = get_session(dora, "quickbooks").get("query", params={"query": "select 1"})
    assert response.status_code == 200
    assert double.calls[-1].url == f"{QB_COMPANY}/4620816365281234/query"


def test_slack_an_error_inside_a_200_reaches_the_caller(
    declared: Any, client: Any, dora: Any
) -> None:
    """Slack never answers 401: a dead token's `"ok": false` is the site's to read, and
    Custodian does not refresh on it."""
    case = case_named("slack_v2")
    double = declared("slack_v2")
    connect(client, case, double)
    double.expire_access_tokens()
    tokens = len(double.of_kind("token"))

    answer = api_call(dora, case)

    assert answer.status_code == 200 and answer.json() == {"ok": False, "error": "invalid_auth"}
    assert len(double.of_kind("token")) == tokens


def test_slack_a_revocation_refused_inside_a_200_is_recorded_as_failed(
    declared: Any, client: Any, dora: Any
) -> None:
    case = case_named("slack_v2")
    double = declared("slack_v2")
    association, _, _ = connect(client, case, double)
    double.expire_access_tokens()  # auth.revoke then answers 200 {"ok": false}

    outcome = disconnect(association)

    assert outcome.revoked is False
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    revoked = CredentialEvent.objects.get(kind="revoked")
    assert revoked.detail == "revocation failed (the provider refused); disconnected anyway"
    (call,) = double.of_kind("revoke")
    assert call.status == 200


# Shapes of real provider tokens: Slack (xoxb-, xoxp-, xoxe.…, xoxe-1-), Notion (ntn_, nrt_,
# secret_), a JWT's base64url header, Intuit's codes and refresh tokens (AB11 + digits), a
# long run of hex digits outside a URL (Xero's opaque refresh tokens), and any token field
# whose value is not one of the placeholders (A1, R1, <…>).
TOKEN_SHAPED = re.compile(
    r"xox[abpre][.-][A-Za-z0-9.-]{6,}|\bntn_|\bnrt_|\bsecret_[A-Za-z0-9]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}|\bAB11\d{6,}"
    r"|(?<![/\w-])[0-9a-fA-F]{32,}(?![\w-])"
    r"|\"(?:access|refresh|id)_token\"\s*:\s*\"(?![AR]\d+\"|<)[^\"]+\""
)


def test_the_docs_hold_no_token_shaped_values() -> None:
    """Examples use placeholders (docs/providers/README.md): a value in a provider's real token
    format reads as a leaked credential, to people and to secret scanners alike."""
    root = CATALOG.parent.parent
    pages = [root / "README.md", root / "SECURITY.md", *sorted((root / "docs").rglob("*.md")),
             *sorted((root / "docs").rglob("*.json"))]
    found = [
        f"{page.relative_to(root)}:{number}: {match.group()}"
        for page in pages
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for match in TOKEN_SHAPED.finditer(line)
    ]
    assert found == []
