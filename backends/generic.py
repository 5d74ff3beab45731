"""Providers declared in settings become backends without new code.

A declaration in ``settings.CUSTODIAN_PROVIDERS`` (see docs/adding-a-provider.md)::

    "strava": {
        "title": "Strava",
        "authorization_url": "https://www.strava.com/oauth/authorize",
        "token_url": "https://www.strava.com/oauth/token",
        "api_base_url": "https://www.strava.com/api/v3",
        "userinfo_url": "https://www.strava.com/api/v3/athlete",
        "id_key": "id",
        "scopes": ["read"],
        "pkce": False,
        "revocation_url": "",
        "client_id": "...", "client_secret": "...",
    }

The declaration is read at call time, not import time, so settings overrides (tests, a
reconfigured site) take effect without reloading backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.auth import AuthBase, HTTPBasicAuth
from social_core.backends.oauth import BaseOAuth2PKCE
from social_core.exceptions import SocialAuthBaseException

from backends.base import CustodianBackend
from backends.origins import UnsafeURL, origin_of

if TYPE_CHECKING:
    from backends.credentials import Credentials


PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Names taken by backends with their own module.
RESERVED_NAMES = frozenset({"monzo"})


@dataclass(frozen=True)
class ProviderDeclaration:
    """One provider as declared in settings; unknown keys are refused to catch typos."""

    name: str
    authorization_url: str
    token_url: str
    api_base_url: str
    userinfo_url: str
    id_key: str = "id"
    title: str = ""
    username_key: str = ""
    scopes: list[str] = field(default_factory=list)
    pkce: bool = True
    revocation_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    # "client_secret_post" (credentials in the form body) or "client_secret_basic".
    token_auth: str = "client_secret_post"  # noqa: S105 -- a method name, not a secret
    # Other origins ("https://content.example.com") get_session may send the token to.
    api_hosts: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(cls, name: str) -> ProviderDeclaration:
        """Return the validated declaration of `name`, or raise ImproperlyConfigured."""
        raw = settings.CUSTODIAN_PROVIDERS.get(name)
        if raw is None:
            raise ImproperlyConfigured(f"CUSTODIAN_PROVIDERS has no provider named {name!r}")
        if not isinstance(raw, dict):
            raise ImproperlyConfigured(
                f"CUSTODIAN_PROVIDERS[{name!r}] must be a JSON object of settings, "
                f"not {type(raw).__name__}"
            )
        if not PROVIDER_NAME.fullmatch(name) or name in RESERVED_NAMES:
            raise ImproperlyConfigured(
                f"CUSTODIAN_PROVIDERS: {name!r} is not a usable provider name (lower-case "
                f"letters, digits and _, at most 32; not {', '.join(sorted(RESERVED_NAMES))})"
            )
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = set(raw) - known
        if unknown:
            raise ImproperlyConfigured(
                f"CUSTODIAN_PROVIDERS[{name!r}] has unknown keys: {', '.join(sorted(unknown))}"
            )
        missing = [key for key in ("authorization_url", "token_url", "api_base_url",
                                   "userinfo_url") if not raw.get(key)]
        if missing:
            raise ImproperlyConfigured(
                f"CUSTODIAN_PROVIDERS[{name!r}] needs: {', '.join(missing)}"
            )
        if raw.get("token_auth", "client_secret_post") not in {
            "client_secret_post", "client_secret_basic"
        }:
            raise ImproperlyConfigured(
                f"CUSTODIAN_PROVIDERS[{name!r}]['token_auth'] must be client_secret_post "
                "or client_secret_basic"
            )
        hosts = raw.get("api_hosts", [])
        if not isinstance(hosts, list) or not all(_is_origin(host) for host in hosts):
            raise ImproperlyConfigured(
                f"CUSTODIAN_PROVIDERS[{name!r}]['api_hosts'] must be a list of origins such as "
                "\"https://files.example.com\" (scheme and host, optionally a port; no path)"
            )
        return cls(name=name, **raw)


def _is_origin(value: object) -> bool:
    """Return whether `value` is exactly scheme://host[:port], read as the session reads it
    (backends/origins.py), with no path, query or fragment."""
    if not isinstance(value, str):
        return False
    try:
        origin_of(value)
    except UnsafeURL:
        return False
    parts = urlsplit(value)
    return parts.path in ("", "/") and not parts.query and not parts.fragment


class DeclaredOAuth2(CustodianBackend, BaseOAuth2PKCE):
    """A standard OAuth 2.0 authorization-code provider described by a declaration."""

    # Redirect URIs are compared exactly by most servers; state goes in `state` only.
    REDIRECT_STATE = False
    STATE_PARAMETER = True

    @property
    def declaration(self) -> ProviderDeclaration:
        return ProviderDeclaration.from_settings(self.name)

    @classmethod
    def get_title(cls, strategy: Any = None) -> str:
        raw = settings.CUSTODIAN_PROVIDERS.get(cls.name, {})
        return raw.get("title") or cls.name.replace("_", " ").title()

    @classmethod
    def is_declared(cls) -> bool:
        """Return whether the declaration still exists (settings can drop it while the backend
        path stays in AUTHENTICATION_BACKENDS)."""
        return isinstance(settings.CUSTODIAN_PROVIDERS.get(cls.name), dict)

    @classmethod
    def is_configured(cls) -> bool:
        return bool(settings.CUSTODIAN_PROVIDERS.get(cls.name, {}).get("client_id"))

    @property
    def ID_KEY(self) -> str:  # type: ignore[override]
        return self.declaration.id_key

    @property
    def DEFAULT_SCOPE(self) -> list[str]:  # type: ignore[override]
        return list(self.declaration.scopes)

    @property
    def DEFAULT_USE_PKCE(self) -> bool:  # type: ignore[override]
        return self.declaration.pkce

    def use_basic_auth(self) -> bool:
        return self.declaration.token_auth == "client_secret_basic"  # noqa: S105 -- a method name

    def refresh_token_auth(self) -> AuthBase | None:
        if self.use_basic_auth():
            return HTTPBasicAuth(*self.get_key_and_secret())
        return None

    def refresh_token_params(self, token: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        params = super().refresh_token_params(token, *args, **kwargs)
        if self.use_basic_auth():
            # RFC 6749 §2.3.1: one client authentication method per request.
            params.pop("client_id", None)
            params.pop("client_secret", None)
        return params

    def api_base_url(self) -> str:
        return self.declaration.api_base_url.rstrip("/")

    def api_hosts(self) -> tuple[str, ...]:
        return tuple(self.declaration.api_hosts)

    def authorization_url(self) -> str:
        return self.declaration.authorization_url

    def access_token_url(self) -> str:
        return self.declaration.token_url

    def get_key_and_secret(self) -> tuple[str, str]:
        declaration = self.declaration
        return declaration.client_id, declaration.client_secret

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return self.get_json(
            self.declaration.userinfo_url,
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        declaration = self.declaration
        username = response.get(declaration.username_key or "username") or response.get(
            declaration.id_key
        )
        details: dict[str, Any] = {"username": str(username or "")}
        for key in ("email", "first_name", "last_name"):
            if isinstance(response.get(key), str):
                details[key] = response[key]
        if isinstance(response.get("name"), str):
            details["fullname"] = response["name"]
        return details

    def account_name(self, access_token: str) -> str:
        """The user-info document's name, username or e-mail, whichever comes first."""
        try:
            info = self.user_data(access_token) or {}
        except (SocialAuthBaseException, requests.RequestException, ValueError):
            return ""  # a friendly name is a nicety; never fail a login over it
        for key in ("name", "username", "email", "description"):
            if isinstance(info.get(key), str) and info[key]:
                return info[key][:100]
        return ""

    def revoke_credentials(self, credentials: Credentials, uid: str) -> bool | None:
        """Revoke with RFC 7009, preferring the refresh token.

        RFC 7009 §2.1: revoking a refresh token also ends the access tokens of its grant.
        """
        url = self.declaration.revocation_url
        if not url:
            return None
        client_id, client_secret = self.get_key_and_secret()
        if credentials.refresh_token:
            token, hint = credentials.refresh_token, "refresh_token"
        else:
            token, hint = credentials.access_token, "access_token"
        data = {"token": token, "token_type_hint": hint}
        auth = None
        if self.use_basic_auth():
            auth = (client_id, client_secret)
        else:
            data.update(client_id=client_id, client_secret=client_secret)
        response = self.request(url, method="POST", data=data, auth=auth, stage="disconnect")
        return response.status_code == 200


def declared_backend(name: str) -> type[DeclaredOAuth2]:
    """Return the backend class of the provider declared as `name`."""
    return type(name, (DeclaredOAuth2,), {"name": name, "__module__": "backends.declared",
                                          "__qualname__": name})
