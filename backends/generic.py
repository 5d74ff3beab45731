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
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.auth import AuthBase, HTTPBasicAuth
from social_core.backends.oauth import BaseOAuth2, BaseOAuth2PKCE
from social_core.exceptions import SocialAuthBaseException

from backends.base import CustodianBackend
from backends.origins import UnsafeURL, origin_of
from backends.profiles import Profile, Revocation

PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Names taken by backends with their own module.
RESERVED_NAMES = frozenset({"monzo"})


@dataclass(frozen=True)
class ProviderDeclaration:
    """One provider as declared in settings; unknown keys are refused to catch typos."""

    name: str
    authorization_url: str = ""
    token_url: str = ""
    api_base_url: str = ""
    userinfo_url: str = ""
    # An OpenID provider's issuer: endpoints, keys and revocation come from its discovery
    # document (backends/oidc.py), so the four URLs above are not declared.
    issuer: str = ""
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
        if raw.get("issuer"):
            _check_issuer(name, raw)
            return cls(name=name, **raw)
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


# Keys an issuer declaration must not carry: discovery is the one source of these.
DISCOVERED = ("authorization_url", "token_url", "userinfo_url", "revocation_url")


def _check_issuer(name: str, raw: dict[str, Any]) -> None:
    """An issuer is an absolute http(s) URL without query or fragment (OpenID Connect
    Discovery §4: {issuer}/.well-known/openid-configuration)."""
    issuer = raw["issuer"]
    parts = urlsplit(issuer) if isinstance(issuer, str) else None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise ImproperlyConfigured(
            f"CUSTODIAN_PROVIDERS[{name!r}]['issuer'] must be the provider's issuer URL, "
            "such as \"https://id.example\" (no query or fragment)"
        )
    given = [key for key in DISCOVERED if raw.get(key)]
    if given:
        raise ImproperlyConfigured(
            f"CUSTODIAN_PROVIDERS[{name!r}] has an issuer, so {', '.join(given)} come from "
            "its discovery document: remove them"
        )


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


class Declared(CustodianBackend):
    """What every declared backend shares: its declaration, read at call time."""

    # Redirect URIs are compared exactly by most servers; state goes in `state` only.
    REDIRECT_STATE = False
    STATE_PARAMETER = True

    @property
    def declaration(self) -> ProviderDeclaration:
        return ProviderDeclaration.from_settings(self.name)

    @classmethod
    def is_declared(cls) -> bool:
        """Return whether the declaration still exists (settings can drop it while the backend
        path stays in AUTHENTICATION_BACKENDS)."""
        return isinstance(settings.CUSTODIAN_PROVIDERS.get(cls.name), dict)

    def get_key_and_secret(self) -> tuple[str, str]:
        declaration = self.declaration
        return declaration.client_id, declaration.client_secret

    @property
    def DEFAULT_USE_PKCE(self) -> bool:
        return self.declaration.pkce


class DeclaredOAuth2(Declared, BaseOAuth2PKCE):  # type: ignore[override]  # PKCE per declaration
    """A standard OAuth 2.0 authorization-code provider described by a declaration."""

    @property
    def ID_KEY(self) -> str:  # type: ignore[override]
        return self.declaration.id_key

    @property
    def DEFAULT_SCOPE(self) -> list[str]:  # type: ignore[override]
        return list(self.declaration.scopes)

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

    def authorization_url(self) -> str:
        return self.declaration.authorization_url

    def access_token_url(self) -> str:
        return self.declaration.token_url

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

def userinfo_name(backend: Any, access_token: str) -> str:
    """The user-info document's name, username or e-mail, whichever comes first."""
    try:
        info = backend.user_data(access_token) or {}
    except (SocialAuthBaseException, requests.RequestException, ValueError):
        return ""  # a friendly name is a nicety; never fail a login over it
    for key in ("name", "username", "email", "description"):
        if isinstance(info.get(key), str) and info[key]:
            return info[key][:100]
    return ""


def declared_profile(name: str) -> Profile | None:
    """The profile of a provider declared in CUSTODIAN_PROVIDERS; None when there is no
    such declaration. A broken declaration still gets its title (its login reports it)."""
    raw = settings.CUSTODIAN_PROVIDERS.get(name)
    if not isinstance(raw, dict):
        return None
    title = raw.get("title") or name.replace("_", " ").title()
    try:
        declaration = ProviderDeclaration.from_settings(name)
    except ImproperlyConfigured:
        return Profile(name=name, title=title, revocation=None)
    if declaration.issuer:
        return Profile(
            name=name,
            title=title,
            # Relative get_session URLs resolve against the issuer unless a base is declared.
            api_base_url=declaration.api_base_url or (lambda backend, data: declaration.issuer),
            api_hosts=tuple(declaration.api_hosts),
            # RFC 7009 at the discovered revocation_endpoint, with the refresh token.
            revocation=Revocation(hint=True, auth="backend"),
            refresh="refresh tokens as the provider issues them (scope offline_access at some)",
        )
    revocation = None
    if declaration.revocation_url:
        # RFC 7009 with the refresh token: revoking it also ends the grant's access tokens.
        revocation = Revocation(
            url=declaration.revocation_url,
            hint=True,
            auth="basic" if declaration.token_auth == "client_secret_basic" else "post",  # noqa: S105
        )
    return Profile(
        name=name,
        title=title,
        api_base_url=declaration.api_base_url,
        api_hosts=tuple(declaration.api_hosts),
        revocation=revocation,
        account_name=userinfo_name,
        refresh="refresh tokens as the provider issues them (RFC 6749 §6)",
    )


def declared_backend(name: str) -> type[BaseOAuth2]:
    """Return the backend class of the provider declared as `name` (an OpenID Connect one
    when the declaration names an issuer)."""
    from backends.oidc import DeclaredOIDC

    raw = settings.CUSTODIAN_PROVIDERS.get(name)
    base: type[BaseOAuth2] = (
        DeclaredOIDC if isinstance(raw, dict) and raw.get("issuer") else DeclaredOAuth2
    )
    return type(name, (base,), {"name": name, "__module__": "backends.declared",
                                "__qualname__": name})
