"""Every stock backend with a profile, through its real social-core class and the real site.

One harness, a block of data per provider: the site's login (POST /login/<name>/, the real
authorization URL, the callback), get_session against the provider's API, refresh when due
with the provider's refresh behaviour, a dead grant, and disconnect with revocation. The
provider is a loopback double (tests/provider_doubles.py) answering in that provider's
shapes; the backend is social-core's own class with only its HTTP exit routed to it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from social_core.backends import (
    auth0,
    azuread,
    bitbucket,
    discord,
    dropbox,
    github,
    gitlab,
    google,
    keycloak,
    linkedin,
    microsoft,
    okta,
    okta_openidconnect,
    open_id_connect,
    salesforce,
    slack,
    spotify,
    strava,
    twitch,
    zoom,
)
from social_core.backends import utils as backend_utils
from social_core.backends.base import BaseAuth
from social_core.utils import setting_name
from social_django.models import UserSocialAuth

from backends.credentials import Credentials
from backends.profiles import Revocation, profile_for
from integrations import ForeignHostRefused, ReauthRequired, get_session, refresh
from integrations.models import CredentialEvent
from integrations.providers.registry import backend_instance, keepalive_periods
from integrations.store.credentials import read_credentials, seal
from integrations.store.writes import patch_association
from tests.conftest import raw_extra_data
from tests.provider_doubles import (
    CLIENT_ID,
    CLIENT_SECRET,
    JWKS,
    ProviderDouble,
    Shape,
    public_key_body,
    routed,
)

pytestmark = pytest.mark.django_db
DAY = 86400
ACCESS, REFRESH = "<access token>", "<refresh token>"
CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


@dataclass(frozen=True)
class Revoked:
    """The revocation request a provider documents: fields name ACCESS or REFRESH."""

    method: str
    url: str
    form: Mapping[str, str] = field(default_factory=dict)
    json: Mapping[str, str] | None = None
    bearer: bool = False  # the access token as `Authorization: Bearer`
    basic: bool = False  # the client as HTTP Basic


@dataclass(frozen=True)
class Case:
    """One provider: its stock backend, what its login sends, and how its double answers."""

    backend: type[BaseAuth[Any]]
    authorize: str  # the real authorization endpoint
    scope: str | None  # the `scope` parameter as sent (None: not sent)
    uid: str
    shape: Shape
    api_base: str  # the profile's API base for this login
    params: Mapping[str, str] = field(default_factory=dict)  # other authorization parameters
    settings: Mapping[str, Any] = field(default_factory=dict)
    api_hosts: tuple[str, ...] = ()  # some of the profile's other hosts
    revoked: Revoked | None = None
    keepalive: int | None = None
    id: str = ""

    @property
    def name(self) -> str:
        return self.backend.name


def person(**fields: Any) -> dict[str, Any]:
    return {"email": "ada@example.com", **fields}


OIDC_ERROR = (400, {"error": "invalid_grant", "error_description": "refresh token is invalid"})
AZURE_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZURE_ERROR = (
    400,
    {"error": "invalid_grant", "error_description": "AADSTS70008: expired", "error_codes": [70008]},
)
GITHUB_DEAD = (200, {"error": "bad_refresh_token", "error_description": "incorrect or expired"})
GITHUB_USER = {
    "https://api.github.com/user": {"id": 583231, "login": "octocat", "name": "The Octocat"},
    "https://api.github.com/user/emails": [{"email": "octocat@github.com", "primary": True}],
}
KEYCLOAK_REALM = "https://sso.example.com/realms/custodian"
OKTA = "https://acme.okta.com/oauth2/default"
AUTH0 = "https://acme.eu.auth0.com"
TWITCH_OIDC = "https://id.twitch.tv/oauth2"
SALESFORCE_ID = "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P"

CASES = [
    Case(
        backend=google.GoogleOAuth2,
        authorize="https://accounts.google.com/o/oauth2/auth",
        scope="openid email profile",
        params={"access_type": "offline", "prompt": "consent"},
        uid="107691503500061507151",
        shape=Shape(
            token_url="https://accounts.google.com/o/oauth2/token",
            expires_in=3599,
            refresh="keep",
            error=(400, {"error": "invalid_grant", "error_description": "expired or revoked"}),
            userinfo={
                "https://www.googleapis.com/oauth2/v3/userinfo": person(
                    sub="107691503500061507151", email_verified=True, name="Ada Lovelace"
                )
            },
            revoke_url="https://oauth2.googleapis.com/revoke",
        ),
        api_base="https://www.googleapis.com",
        api_hosts=("https://gmail.googleapis.com", "https://sheets.googleapis.com"),
        revoked=Revoked("POST", "https://oauth2.googleapis.com/revoke", form={"token": REFRESH}),
        keepalive=30 * DAY,
    ),
    Case(
        backend=github.GithubOAuth2,
        authorize="https://github.com/login/oauth/authorize",
        settings={"SCOPE": ["read:user", "user:email"]},
        scope="read:user,user:email",
        uid="583231",
        shape=Shape(
            token_url="https://github.com/login/oauth/access_token",
            expires_in=None,
            refresh="none",
            token_type="bearer",
            userinfo=GITHUB_USER,
            revoke_url=f"https://api.github.com/applications/{CLIENT_ID}/grant",
            revoke_answer=(204, None),
            api_error=(401, {"message": "Bad credentials"}),
        ),
        api_base="https://api.github.com",
        api_hosts=("https://uploads.github.com",),
        revoked=Revoked(
            "DELETE",
            f"https://api.github.com/applications/{CLIENT_ID}/grant",
            json={"access_token": ACCESS},
            basic=True,
        ),
    ),
    Case(
        backend=github.GithubAppAuth,
        authorize="https://github.com/login/oauth/authorize",
        scope=None,
        uid="583231",
        shape=Shape(
            token_url="https://github.com/login/oauth/access_token",
            expires_in=28800,
            refresh="one-time",
            token_type="bearer",
            token_extra={"refresh_token_expires_in": 15811200},
            error=GITHUB_DEAD,
            userinfo=GITHUB_USER,
            revoke_url=f"https://api.github.com/applications/{CLIENT_ID}/grant",
            revoke_answer=(204, None),
        ),
        api_base="https://api.github.com",
        revoked=Revoked(
            "DELETE",
            f"https://api.github.com/applications/{CLIENT_ID}/grant",
            json={"access_token": ACCESS},
            basic=True,
        ),
        keepalive=30 * DAY,
    ),
    Case(
        backend=gitlab.GitLabOAuth2,
        authorize="https://gitlab.com/oauth/authorize",
        scope="read_user",
        uid="4184",
        shape=Shape(
            token_url="https://gitlab.com/oauth/token",
            expires_in=7200,
            refresh="one-time",
            token_extra={"created_at": 1760000000},
            userinfo={"https://gitlab.com/api/v4/user": person(id=4184, username="ada")},
            revoke_url="https://gitlab.com/oauth/revoke",
        ),
        api_base="https://gitlab.com/api/v4",
        revoked=Revoked(
            "POST", "https://gitlab.com/oauth/revoke", form={"token": REFRESH, **CLIENT}
        ),
    ),
    Case(
        backend=bitbucket.BitbucketOAuth2,
        authorize="https://bitbucket.org/site/oauth2/authorize",
        scope=None,
        uid="{4a3b2c1d-0000-4000-8000-00000000ada1}",
        shape=Shape(
            token_url="https://bitbucket.org/site/oauth2/access_token",
            client_auth="either",
            expires_in=7200,
            refresh="same",
            token_type="bearer",
            token_extra={"scopes": "account email"},
            error=(400, {"error": "invalid_request", "error_description": "Invalid refresh_token"}),
            userinfo={
                "https://api.bitbucket.org/2.0/user/emails": {
                    "values": [
                        {"email": "ada@example.com", "is_confirmed": True, "is_primary": True}
                    ]
                },
                "https://api.bitbucket.org/2.0/user": {
                    "uuid": "{4a3b2c1d-0000-4000-8000-00000000ada1}",
                    "username": "ada",
                    "display_name": "Ada Lovelace",
                },
            },
        ),
        api_base="https://api.bitbucket.org/2.0",
    ),
    Case(
        backend=strava.StravaOAuth,
        authorize="https://www.strava.com/oauth/authorize",
        settings={"SCOPE": ["read", "activity:read_all"]},
        scope="read,activity:read_all",
        uid="227615",
        shape=Shape(
            token_url="https://www.strava.com/oauth/token",
            expires_in=21600,
            expires_at=True,
            refresh="one-time",
            token_extra={"athlete": {"id": 227615, "username": "ada", "firstname": "Ada"}},
            error=(
                400,
                {
                    "message": "Bad Request",
                    "errors": [
                        {"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}
                    ],
                },
            ),
            userinfo={"https://www.strava.com/api/v3/athlete": {"id": 227615, "username": "ada"}},
            revoke_url="https://www.strava.com/oauth/deauthorize",
        ),
        api_base="https://www.strava.com/api/v3",
        revoked=Revoked(
            "POST", "https://www.strava.com/oauth/deauthorize", form={"access_token": ACCESS}
        ),
    ),
    Case(
        backend=spotify.SpotifyOAuth2,
        authorize="https://accounts.spotify.com/authorize",
        settings={"SCOPE": ["user-read-email", "playlist-read-private"]},
        scope="user-read-email playlist-read-private",
        uid="wizzler",
        shape=Shape(
            token_url="https://accounts.spotify.com/api/token",
            client_auth="basic",
            expires_in=3600,
            refresh="keep",
            error=(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}),
            userinfo={"https://api.spotify.com/v1/me": person(id="wizzler", display_name="W")},
        ),
        api_base="https://api.spotify.com/v1",
    ),
    Case(
        backend=dropbox.DropboxOAuth2V2,
        authorize="https://www.dropbox.com/oauth2/authorize",
        scope=None,
        params={"token_access_type": "offline"},
        uid="dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
        shape=Shape(
            token_url="https://api.dropboxapi.com/oauth2/token",
            client_auth="either",
            expires_in=14400,
            refresh="keep",
            token_type="bearer",
            token_extra={"account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc", "uid": "12345"},
            error=(400, {"error": "invalid_grant", "error_description": "refresh token invalid"}),
            userinfo={
                "https://api.dropboxapi.com/2/users/get_current_account": person(
                    account_id="dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
                    name={"display_name": "Ada Lovelace", "given_name": "Ada", "surname": "L"},
                )
            },
            revoke_url="https://api.dropboxapi.com/2/auth/token/revoke",
            revoke_answer=(200, None),
            api_error=(401, {"error_summary": "expired_access_token/"}),
        ),
        api_base="https://api.dropboxapi.com/2",
        api_hosts=("https://content.dropboxapi.com", "https://notify.dropboxapi.com"),
        revoked=Revoked("POST", "https://api.dropboxapi.com/2/auth/token/revoke", bearer=True),
    ),
    Case(
        backend=slack.SlackOAuth2,
        authorize="https://slack.com/oauth/authorize",
        scope="identity.basic,identity.email",
        uid="U0G9QF9C6",
        shape=Shape(
            token_url="https://slack.com/api/oauth.access",
            client_auth="either",
            expires_in=None,
            refresh="none",
            token_extra={"ok": True, "team": {"id": "T0G9PQBBK"}},
            userinfo={
                "https://slack.com/api/users.identity": {
                    "ok": True,
                    "user": {"name": "Sonny Whether", "id": "U0G9QF9C6", "email": "s@example.com"},
                    "team": {"id": "T0G9PQBBK", "name": "Custodians"},
                }
            },
            revoke_url="https://slack.com/api/auth.revoke",
            revoke_answer=(200, {"ok": True, "revoked": True}),
            # Slack reports every Web API failure with HTTP 200.
            api_error=(200, {"ok": False, "error": "token_revoked"}),
        ),
        api_base="https://slack.com/api",
        revoked=Revoked("POST", "https://slack.com/api/auth.revoke", bearer=True),
    ),
    Case(
        backend=salesforce.SalesforceOAuth2,
        authorize="https://login.salesforce.com/services/oauth2/authorize",
        scope=None,
        uid=SALESFORCE_ID,
        shape=Shape(
            token_url="https://login.salesforce.com/services/oauth2/token",
            expires_in=None,
            refresh="keep",
            token_extra={
                "instance_url": "https://acme.my.salesforce.com",
                "id": SALESFORCE_ID,
                "issued_at": "1760000000000",
                "signature": "0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ=",
            },
            error=(400, {"error": "invalid_grant", "error_description": "expired access/refresh"}),
            userinfo={SALESFORCE_ID: person(id=SALESFORCE_ID, username="ada@acme.example")},
            revoke_url="https://login.salesforce.com/services/oauth2/revoke",
            revoke_answer=(200, None),
            api_error=(401, [{"message": "Session expired", "errorCode": "INVALID_SESSION_ID"}]),
        ),
        api_base="https://acme.my.salesforce.com/services/data/v64.0",
        revoked=Revoked(
            "POST", "https://login.salesforce.com/services/oauth2/revoke", form={"token": REFRESH}
        ),
    ),
    Case(
        backend=azuread.AzureADOAuth2,
        authorize="https://login.microsoftonline.com/common/oauth2/authorize",
        scope="openid profile user_impersonation email",
        uid="AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        shape=Shape(
            token_url="https://login.microsoftonline.com/common/oauth2/token",
            expires_in=3599,
            refresh="rotate",
            error=AZURE_ERROR,
            id_token={
                "iss": f"https://sts.windows.net/{AZURE_TENANT}/",
                "tid": AZURE_TENANT,
                "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
                "name": "Ada Lovelace",
                "upn": "ada@contoso.example",
            },
            documents={
                "https://login.microsoftonline.com/common/.well-known/openid-configuration": {
                    "issuer": "https://sts.windows.net/{tenantid}/",
                    "jwks_uri": "https://login.microsoftonline.com/common/discovery/keys",
                },
                "https://login.microsoftonline.com/common/discovery/keys": JWKS,
            },
        ),
        api_base="https://graph.microsoft.com/v1.0",
        keepalive=30 * DAY,
    ),
    Case(
        backend=microsoft.MicrosoftOAuth2,
        authorize="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        # offline_access comes from the profile: no refresh token without it.
        scope="offline_access User.Read",
        uid="87d349ed-44d7-43e1-9a83-5f2406dee5bd",
        shape=Shape(
            token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
            expires_in=3599,
            refresh="rotate",
            token_extra={"ext_expires_in": 3599},
            error=AZURE_ERROR,
            userinfo={
                "https://graph.microsoft.com/v1.0/me": {
                    "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
                    "userPrincipalName": "ada@contoso.example",
                    "displayName": "Ada Lovelace",
                }
            },
        ),
        api_base="https://graph.microsoft.com/v1.0",
        keepalive=30 * DAY,
    ),
    Case(
        backend=zoom.ZoomOAuth2,
        authorize="https://zoom.us/oauth/authorize",
        scope="user:read",
        uid="KDcuGIm1QgePTO8WbOqwIQ",
        shape=Shape(
            token_url="https://zoom.us/oauth/token",
            client_auth="basic",
            expires_in=3599,
            refresh="one-time",
            token_type="bearer",
            error=(400, {"reason": "Invalid Token!", "error": "invalid_request"}),
            userinfo={"https://api.zoom.us/v2/users/me": person(id="KDcuGIm1QgePTO8WbOqwIQ")},
            revoke_url="https://zoom.us/oauth/revoke",
            revoke_answer=(200, {"status": "success"}),
        ),
        api_base="https://api.zoom.us/v2",
        revoked=Revoked("POST", "https://zoom.us/oauth/revoke", form={"token": ACCESS}, basic=True),
    ),
    Case(
        backend=discord.DiscordOAuth2,
        authorize="https://discord.com/api/oauth2/authorize",
        settings={"SCOPE": ["email"]},
        # Sent as "email+identify": the backend's separator is a form-encoded space.
        scope="email identify",
        uid="80351110224678912",
        shape=Shape(
            token_url="https://discord.com/api/oauth2/token",
            client_auth="either",
            expires_in=604800,
            refresh="rotate",
            error=(400, {"error": "invalid_grant", "error_description": 'Invalid "refresh_token"'}),
            userinfo={
                "https://discord.com/api/users/@me": person(id="80351110224678912", username="n")
            },
            revoke_url="https://discord.com/api/oauth2/token/revoke",
        ),
        api_base="https://discord.com/api/v10",
        revoked=Revoked(
            "POST",
            "https://discord.com/api/oauth2/token/revoke",
            form={"token": REFRESH, "token_type_hint": "refresh_token"},
            basic=True,
        ),
    ),
    Case(
        backend=twitch.TwitchOAuth2,
        authorize="https://id.twitch.tv/oauth2/authorize",
        scope="user:read:email",
        uid="141981764",
        shape=Shape(
            token_url="https://id.twitch.tv/oauth2/token",
            expires_in=14124,
            refresh="rotate",
            token_type="bearer",
            scope_list=True,
            error=(400, {"status": 400, "message": "Invalid refresh token"}),
            userinfo={
                "https://api.twitch.tv/helix/users": {
                    "data": [person(id="141981764", login="twitchdev")]
                }
            },
            revoke_url="https://id.twitch.tv/oauth2/revoke",
            revoke_answer=(200, None),
        ),
        api_base="https://api.twitch.tv/helix",
        revoked=Revoked(
            "POST",
            "https://id.twitch.tv/oauth2/revoke",
            form={"client_id": CLIENT_ID, "token": ACCESS},
        ),
    ),
    Case(
        id="twitch-openidconnect",
        backend=twitch.TwitchOpenIdConnect,
        authorize="https://id.twitch.tv/oauth2/authorize",
        scope="openid user:read:email",
        uid="141981764",
        shape=Shape(
            token_url="https://id.twitch.tv/oauth2/token",
            expires_in=14124,
            refresh="rotate",
            token_type="bearer",
            scope_list=True,
            error=(400, {"status": 400, "message": "Invalid refresh token"}),
            # The claims the backend asks for (its `claims` parameter) and reads.
            id_token={
                "iss": TWITCH_OIDC,
                "sub": "141981764",
                "preferred_username": "twitchdev",
                "email": "t@example.com",
                "email_verified": True,
            },
            userinfo={f"{TWITCH_OIDC}/userinfo": {"sub": "141981764", "email": "t@example.com"}},
            documents={
                f"{TWITCH_OIDC}/.well-known/openid-configuration": {
                    "issuer": TWITCH_OIDC,
                    "authorization_endpoint": f"{TWITCH_OIDC}/authorize",
                    "token_endpoint": f"{TWITCH_OIDC}/token",
                    "userinfo_endpoint": f"{TWITCH_OIDC}/userinfo",
                    "jwks_uri": f"{TWITCH_OIDC}/keys",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                },
                f"{TWITCH_OIDC}/keys": JWKS,
            },
            revoke_url=f"{TWITCH_OIDC}/revoke",
            revoke_answer=(200, None),
        ),
        api_base="https://api.twitch.tv/helix",
        revoked=Revoked(
            "POST", f"{TWITCH_OIDC}/revoke", form={"client_id": CLIENT_ID, "token": ACCESS}
        ),
    ),
    Case(
        backend=linkedin.LinkedinOAuth2,
        authorize="https://www.linkedin.com/oauth/v2/authorization",
        scope="r_liteprofile",
        uid="yrZCpj2Z12",
        shape=Shape(
            token_url="https://www.linkedin.com/oauth/v2/accessToken",
            expires_in=5184000,
            refresh="same",
            token_extra={"refresh_token_expires_in": 31536000},
            error=(400, {"error": "invalid_grant", "error_description": "expired or revoked"}),
            userinfo={
                "https://api.linkedin.com/v2/me": {
                    "id": "yrZCpj2Z12",
                    "firstName": {
                        "localized": {"en_US": "Ada"},
                        "preferredLocale": {"country": "US", "language": "en"},
                    },
                    "lastName": {
                        "localized": {"en_US": "Lovelace"},
                        "preferredLocale": {"country": "US", "language": "en"},
                    },
                }
            },
        ),
        api_base="https://api.linkedin.com/v2",
    ),
    Case(
        backend=keycloak.KeycloakOAuth2,
        authorize=f"{KEYCLOAK_REALM}/protocol/openid-connect/auth",
        settings={
            "AUTHORIZATION_URL": f"{KEYCLOAK_REALM}/protocol/openid-connect/auth",
            "ACCESS_TOKEN_URL": f"{KEYCLOAK_REALM}/protocol/openid-connect/token",
            "PUBLIC_KEY": public_key_body(),
        },
        # Offline tokens outlive the SSO session: the profile asks for them.
        scope="offline_access",
        uid="0b6f1c2e-5d4a-4e6b-9c1d-ada000000001",
        shape=Shape(
            token_url=f"{KEYCLOAK_REALM}/protocol/openid-connect/token",
            client_auth="either",
            expires_in=300,
            refresh="rotate",
            token_extra={"refresh_expires_in": 0, "session_state": "5e7f"},
            error=(400, {"error": "invalid_grant", "error_description": "Token is not active"}),
            jwt_access_token={
                "iss": KEYCLOAK_REALM,
                "sub": "0b6f1c2e-5d4a-4e6b-9c1d-ada000000001",
                "preferred_username": "ada",
                "email": "ada@example.com",
            },
            revoke_url=f"{KEYCLOAK_REALM}/protocol/openid-connect/revoke",
            revoke_answer=(200, None),
        ),
        api_base=KEYCLOAK_REALM,
        revoked=Revoked(
            "POST",
            f"{KEYCLOAK_REALM}/protocol/openid-connect/revoke",
            form={"token": REFRESH, "token_type_hint": "refresh_token", **CLIENT},
        ),
        keepalive=7 * DAY,
    ),
    Case(
        backend=okta.OktaOAuth2,
        authorize=f"{OKTA}/v1/authorize",
        settings={"API_URL": OKTA},
        scope="offline_access openid profile email",
        uid="00uid4BxXw6I6TV4m0g3",
        shape=Shape(
            token_url=f"{OKTA}/v1/token",
            client_auth="either",
            refresh="same",
            error=OIDC_ERROR,
            userinfo={f"{OKTA}/v1/userinfo": person(sub="00uid4BxXw6I6TV4m0g3")},
            revoke_url=f"{OKTA}/v1/revoke",
            revoke_answer=(200, None),
        ),
        api_base=OKTA,
        revoked=Revoked(
            "POST",
            f"{OKTA}/v1/revoke",
            form={"token": REFRESH, "token_type_hint": "refresh_token", **CLIENT},
        ),
        keepalive=3 * DAY,
    ),
    Case(
        backend=okta_openidconnect.OktaOpenIdConnect,
        authorize=f"{OKTA}/v1/authorize",
        settings={"API_URL": OKTA},
        scope="offline_access openid profile email",
        uid="00uid4BxXw6I6TV4m0g3",
        shape=Shape(
            token_url=f"{OKTA}/v1/token",
            client_auth="either",
            refresh="one-time",
            error=OIDC_ERROR,
            id_token={"iss": OKTA, "sub": "00uid4BxXw6I6TV4m0g3"},
            userinfo={f"{OKTA}/v1/userinfo": person(sub="00uid4BxXw6I6TV4m0g3")},
            documents={
                f"{OKTA}/.well-known/openid-configuration": {
                    "issuer": OKTA,
                    "authorization_endpoint": f"{OKTA}/v1/authorize",
                    "token_endpoint": f"{OKTA}/v1/token",
                    "userinfo_endpoint": f"{OKTA}/v1/userinfo",
                    "revocation_endpoint": f"{OKTA}/v1/revoke",
                    "jwks_uri": f"{OKTA}/v1/keys",
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_basic",
                        "client_secret_post",
                    ],
                },
                f"{OKTA}/v1/keys": JWKS,
            },
            revoke_url=f"{OKTA}/v1/revoke",
            revoke_answer=(200, None),
        ),
        api_base=OKTA,
        revoked=Revoked(
            "POST",
            f"{OKTA}/v1/revoke",
            form={"token": REFRESH, "token_type_hint": "refresh_token", **CLIENT},
        ),
        keepalive=3 * DAY,
    ),
    Case(
        backend=auth0.Auth0OAuth2,
        authorize=f"{AUTH0}/authorize",
        settings={"DOMAIN": "acme.eu.auth0.com"},
        scope="offline_access openid profile email",
        uid="auth0|5f7c8ec7c33c6c004bbafe82",
        shape=Shape(
            token_url=f"{AUTH0}/oauth/token",
            expires_in=86400,
            refresh="one-time",
            error=(403, {"error": "invalid_grant", "error_description": "Unknown or invalid"}),
            id_token={
                "iss": f"{AUTH0}/",
                "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
                "nickname": "ada",
                "email": "ada@example.com",
            },
            documents={f"{AUTH0}/.well-known/jwks.json": JWKS},
            revoke_url=f"{AUTH0}/oauth/revoke",
        ),
        api_base=AUTH0,
        revoked=Revoked("POST", f"{AUTH0}/oauth/revoke", json={"token": REFRESH, **CLIENT}),
        keepalive=5 * DAY,
    ),
]


# --- The harness ---------------------------------------------------------------------------


@pytest.fixture(params=CASES, ids=lambda case: case.id or case.name)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@contextmanager
def enabled(
    settings: Any, backend: type[BaseAuth[Any]], shape: Shape, extra: Mapping[str, Any]
) -> Iterator[ProviderDouble]:
    """A double answering per `shape`, and the site with the routed stock backend enabled
    and configured the way PSA documents it (SOCIAL_AUTH_<NAME>_KEY, _SECRET, ...)."""
    double = ProviderDouble(shape)
    settings.PROVIDER_DOUBLE_URL = double.base_url
    settings.AUTHENTICATION_BACKENDS = [routed(backend), *settings.AUTHENTICATION_BACKENDS]
    for key, value in {"KEY": CLIENT_ID, "SECRET": CLIENT_SECRET, **extra}.items():
        setattr(settings, setting_name(backend.name, key), value)
    # Through the module: social-core rebinds BACKENDSCACHE when it reloads backends.
    backend_utils.BACKENDSCACHE.clear()
    try:
        yield double
    finally:
        backend_utils.BACKENDSCACHE.clear()
        double.stop()


@pytest.fixture
def double(case: Case, settings: Any) -> Iterator[ProviderDouble]:
    with enabled(settings, case.backend, case.shape, case.settings) as double:
        yield double


@pytest.fixture
def dora(client: Any, django_user_model: Any) -> Any:
    """A local user with a password (so disconnecting is allowed), logged in."""
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    return user


def connect(client: Any, case: Case, double: ProviderDouble) -> tuple[UserSocialAuth, str]:
    """Log in through the site like a browser; return the association and the URL the site
    sent the browser to."""
    begin = client.post(f"/login/{case.name}/")
    assert begin.status_code == 302, begin.content[:300]
    location = begin["Location"]
    done = client.get(f"/complete/{case.name}/", double.authorize(location))
    association = UserSocialAuth.objects.filter(provider=case.name).first()
    assert association is not None, done.content.decode()[:2000]
    return association, location


def point_api_at(case: Case, double: ProviderDouble, settings: Any) -> None:
    """Send get_session's API calls to the double: the API base at its stand-in for the real
    one, and its second server as an extra host."""
    setattr(settings, setting_name(case.name, "API_BASE_URL"), double.local(case.api_base))
    setattr(settings, setting_name(case.name, "API_HOSTS"), [double.other_url])


def issued(double: ProviderDouble) -> tuple[str, str | None]:
    grant = double.grants[-1]
    return grant.access_token, grant.latest_refresh


def test_login(case: Case, double: ProviderDouble, client: Any, dora: Any) -> None:
    before = time.time()
    association, location = connect(client, case, double)

    sent = urlsplit(location)
    assert f"{sent.scheme}://{sent.netloc}{sent.path}" == case.authorize
    query = {key: values[0] for key, values in parse_qs(sent.query).items()}
    assert query["client_id"] == CLIENT_ID
    redirect = urlsplit(query["redirect_uri"])
    assert redirect._replace(query="").geturl() == f"http://testserver/complete/{case.name}/"
    # Backends that keep BaseOAuth2's REDIRECT_STATE (Salesforce, Auth0) repeat the state in
    # the redirect URI; a provider comparing redirect URIs exactly must be told the pattern.
    assert redirect.query in ("", f"redirect_state={query['state']}")
    assert query["response_type"] == "code"
    assert query["state"]
    assert query.get("scope") == case.scope
    assert case.params.items() <= query.items()

    assert association.uid == case.uid
    assert association.user == dora
    access, refresh_token = issued(double)
    credentials = read_credentials(association.extra_data)
    assert (credentials.access_token, credentials.refresh_token) == (access, refresh_token)
    raw = raw_extra_data(association)
    assert access not in raw
    assert refresh_token is None or refresh_token not in raw
    if case.shape.expires_in is None:
        assert credentials.expires_at is None
    else:
        expected = before + case.shape.expires_in
        assert credentials.expires_at is not None
        assert expected - 5 <= credentials.expires_at <= time.time() + case.shape.expires_in
    assert credentials.status == "active"
    assert list(CredentialEvent.objects.values_list("kind", flat=True)) == ["connected"]

    profile = profile_for(case.name)
    assert profile.keepalive == case.keepalive
    assert keepalive_periods().get(case.name) == case.keepalive
    # The login page offers it by the profile's title; its forms may go to the provider.
    page = Client().get("/login/")
    assert profile.title and f"Log in with {profile.title}" in page.content.decode()
    authorize = urlsplit(case.authorize)
    assert f"{authorize.scheme}://{authorize.netloc}" in page["Content-Security-Policy"]


def test_session_sends_the_token_to_the_provider_only(
    case: Case, double: ProviderDouble, client: Any, dora: Any, settings: Any
) -> None:
    association, _ = connect(client, case, double)
    profile = profile_for(case.name)
    backend = backend_instance(case.name)
    # The profile's own values, before the test points the API at the double.
    assert profile.base_url(backend, association.extra_data) == case.api_base
    assert set(case.api_hosts) <= set(profile.hosts(backend))

    point_api_at(case, double, settings)
    session = get_session(dora, case.name)
    access, _ = issued(double)

    assert session.get("probe/items", params={"limit": 1}).status_code == 200
    call = double.calls[-1]
    assert (call.kind, call.url) == ("api", f"{case.api_base}/probe/items")
    assert call.headers["Authorization"] == f"Bearer {access}"
    assert profile.request_headers(backend).items() <= call.headers.items()

    assert session.get(f"{double.other_url}/extra").status_code == 200
    assert double.calls[-1].origin == "other"
    assert double.calls[-1].headers["Authorization"] == f"Bearer {access}"

    seen = len(double.calls)
    for elsewhere in ("https://attacker.example/steal", "http://127.0.0.1:9/steal"):
        with pytest.raises(ForeignHostRefused):
            session.get(elsewhere)
    assert len(double.calls) == seen


def test_refresh_when_due(
    case: Case,
    double: ProviderDouble,
    client: Any,
    dora: Any,
    settings: Any,
    time_machine: Any,
) -> None:
    association, _ = connect(client, case, double)
    point_api_at(case, double, settings)
    before = read_credentials(association.extra_data)
    token_calls = len(double.of_kind("token"))

    if before.refresh_token is None:
        # Tokens that never expire: a year on, the same token still works, no token call.
        time_machine.move_to(time.time() + 400 * DAY, tick=False)
        assert get_session(dora, case.name).get("probe").status_code == 200
        assert len(double.of_kind("token")) == token_calls
        return
    if before.expires_at is None:
        # No lifetime given (Salesforce): the API's 401 is what says "refresh".
        double.expire_access_tokens()
    else:
        time_machine.move_to(before.expires_at + 10, tick=False)

    assert get_session(dora, case.name).get("probe").status_code == 200

    association.refresh_from_db()
    after = read_credentials(association.extra_data)
    access, latest_refresh = issued(double)
    assert after.access_token == access != before.access_token
    assert double.calls[-1].headers["Authorization"] == f"Bearer {access}"
    token_call = double.of_kind("token")[-1]
    assert len(double.of_kind("token")) == token_calls + 1
    assert token_call.form["grant_type"] == "refresh_token"
    if case.shape.refresh in ("keep", "same"):
        assert after.refresh_token == before.refresh_token
    else:
        assert after.refresh_token == latest_refresh != before.refresh_token
    if before.expires_at is not None:
        assert after.expires_at is not None and after.expires_at > before.expires_at
    assert CredentialEvent.objects.filter(kind="refreshed").count() == 1


def test_a_dead_grant_asks_for_a_new_login(
    case: Case, double: ProviderDouble, client: Any, dora: Any, settings: Any
) -> None:
    association, _ = connect(client, case, double)
    point_api_at(case, double, settings)
    before = read_credentials(association.extra_data)

    if before.refresh_token is None:
        double.kill()
        if case.shape.api_error[0] != 401:
            # Slack says "token_revoked" with HTTP 200: nothing tells a session the grant is
            # gone, so the association stays active until the site reads the body itself.
            assert get_session(dora, case.name).get("probe").json()["ok"] is False
            association.refresh_from_db()
            assert association.extra_data["status"] == "active"
            return
        with pytest.raises(ReauthRequired):
            get_session(dora, case.name).get("probe")
        association.refresh_from_db()
        assert association.extra_data["status_reason"] == "no_refresh_token"
    else:
        if case.shape.refresh == "one-time":
            # Rotate once, then hand back the spent refresh token (what a lost answer or a
            # second deployment leaves behind): the provider refuses its reuse.
            refresh(association, force=True)
            patch_association(association, seal({"refresh_token": before.refresh_token}))
        else:
            double.kill()  # the user removed the app at the provider
        with pytest.raises(ReauthRequired):
            refresh(association, force=True)
        refused = double.of_kind("token")[-1]
        assert refused.status == case.shape.error[0]

    association.refresh_from_db()
    assert association.extra_data["status"] == "reauth_required"
    assert CredentialEvent.objects.filter(kind="reauth_required").count() == 1


def test_disconnect_revokes_as_documented(
    case: Case, double: ProviderDouble, client: Any, dora: Any
) -> None:
    association, _ = connect(client, case, double)
    access, refresh_token = issued(double)

    response = client.post(f"/disconnect/{case.name}/{association.pk}/")

    assert response.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    kinds = list(CredentialEvent.objects.order_by("pk").values_list("kind", "detail"))
    revocations = double.of_kind("revoke")
    if case.revoked is None:
        assert revocations == []
        assert kinds == [("connected", ""), ("disconnected", "")]
        return
    assert kinds == [("connected", ""), ("revoked", ""), ("disconnected", "")]
    assert len(revocations) == 1
    call, expected = revocations[0], case.revoked
    tokens = {ACCESS: access, REFRESH: refresh_token}

    def filled(fields: Mapping[str, str]) -> dict[str, str | None]:
        return {key: tokens.get(value, value) for key, value in fields.items()}

    assert (call.method, call.url) == (expected.method, expected.url)
    assert dict(call.form) == filled(expected.form)
    assert call.json == (filled(expected.json) if expected.json is not None else None)
    assert call.query == {}
    authorization = call.headers.get("Authorization")
    if expected.bearer:
        assert authorization == f"Bearer {access}"
    elif expected.basic:
        assert call.basic == (CLIENT_ID, CLIENT_SECRET)
    else:
        assert authorization is None
    # The provider ended the grant.
    assert not double.token_works(access)


# --- Beyond the common journey -----------------------------------------------------------


def case_named(name: str) -> Case:
    return next(case for case in CASES if case.name == name and not case.id)


def test_a_revocation_refused_in_the_body_is_recorded_as_failed(
    settings: Any, client: Any, dora: Any
) -> None:
    """Slack answers HTTP 200 with "ok": false; the profile reads the body."""
    case = case_named("slack")
    shape = dataclasses.replace(
        case.shape, revoke_answer=(200, {"ok": False, "error": "invalid_auth"})
    )
    with enabled(settings, case.backend, shape, case.settings) as double:
        association, _ = connect(client, case, double)
        client.post(f"/disconnect/slack/{association.pk}/")

    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    revoked = CredentialEvent.objects.get(kind="revoked")
    assert revoked.detail == "revocation failed (the provider refused); disconnected anyway"


def test_the_sites_own_scopes_replace_the_profiles(
    settings: Any, client: Any, dora: Any
) -> None:
    case = case_named("microsoft-graph")
    extra = {**case.settings, "SCOPE": ["Mail.Read"]}
    with enabled(settings, case.backend, case.shape, extra):
        location = client.post("/login/microsoft-graph/")["Location"]
    assert parse_qs(urlsplit(location).query)["scope"] == ["Mail.Read User.Read"]


OIDC_ISSUER = "https://id.example.com/realms/acme"


@pytest.mark.parametrize(
    ("methods", "basic"), [(["client_secret_basic"], True), (["client_secret_post"], False)]
)
def test_oidc_uses_the_issuer_and_the_discovered_revocation_endpoint(
    settings: Any, methods: list[str], basic: bool
) -> None:
    """The generic backend's profile: API base = issuer; RFC 7009 at the discovery document's
    revocation_endpoint, with the hint and the client authentication of its token calls."""
    issuer = f"{OIDC_ISSUER}-{methods[0]}"  # one discovery document per variant (it is cached)
    shape = Shape(
        token_url=f"{issuer}/token",
        documents={
            f"{issuer}/.well-known/openid-configuration": {
                "issuer": issuer,
                "token_endpoint": f"{issuer}/token",
                "revocation_endpoint": f"{issuer}/revoke",
                "token_endpoint_auth_methods_supported": methods,
            }
        },
        revoke_url=f"{issuer}/revoke",
    )
    backend_class = open_id_connect.OpenIdConnectAuth
    with enabled(settings, backend_class, shape, {"OIDC_ENDPOINT": issuer}) as double:
        backend = backend_instance("oidc")
        profile = profile_for("oidc")
        assert profile.base_url(backend, {}) == issuer
        credentials = Credentials("access-1", "refresh-1", "Bearer", "", None, "active")

        assert profile.revoke(backend, credentials, "sub-1", {}) is True

    (call,) = double.of_kind("revoke")
    assert (call.method, call.url) == ("POST", f"{issuer}/revoke")
    fields = {"token": "refresh-1", "token_type_hint": "refresh_token"}
    if basic:
        assert call.basic == (CLIENT_ID, CLIENT_SECRET)
        assert call.form == fields
    else:
        assert call.form == {**fields, **CLIENT}
        assert "Authorization" not in call.headers


def test_every_profile_describes_its_revocation() -> None:
    """One line per profile for operators, whatever the kind of its revocation URL."""
    from backends.profiles import registered

    revocations = {
        name: profile.revocation
        for name, profile in registered().items()
        if isinstance(profile.revocation, Revocation)
    }
    assert len(revocations) >= 15
    for name, revocation in revocations.items():
        described = revocation.describe()
        assert described.startswith(f"{revocation.method} ") and "\n" not in described, name


def test_a_sites_own_profile_replaces_the_shipped_one() -> None:
    from backends.profiles import Profile, register

    shipped = profile_for("github")
    try:
        register(Profile(name="github", title="GitHub Enterprise", revocation=None))
        assert profile_for("github").title == "GitHub Enterprise"
    finally:
        register(shipped)
    assert profile_for("github") is shipped
