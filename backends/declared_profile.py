"""A declaration's profile: what Custodian adds to a declared provider's backend.

The same declaration (backends/declaration.py) gives the backend its handshake
(backends/generic.py, backends/oidc.py) and Custodian its profile: the API base (templated
from captured fields), the other API hosts, the headers API calls need, revocation, the codes
that mean "reconnect", keep-alive, and the provider's pages people are sent to.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from social_core.exceptions import SocialAuthBaseException

from backends.declaration import ProviderDeclaration
from backends.profiles import Profile, Revocation


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
    headers = dict(declaration.headers)
    rules = declaration.rules
    common: dict[str, Any] = {
        "name": name,
        "title": title,
        "api_hosts": tuple(declaration.api_hosts),
        "keepalive": declaration.keepalive,
        "reauth_codes": rules.reconnect,
        "error_code": rules.code if rules.code_key != "error" else None,
        "headers": (lambda backend: headers) if headers else None,
        "connected_apps_url": declaration.connected_apps_url,
        "sign_out_url": declaration.sign_out_url,
    }
    if declaration.issuer:
        return Profile(
            # OpenID Connect Core §3.1.2.1's account chooser, unless the declaration says.
            select_account=declaration.select_account or {"prompt": "select_account"},
            # Relative get_session URLs resolve against the issuer unless a base is declared.
            api_base_url=declaration.api_base_url or (lambda backend, data: declaration.issuer),
            # RFC 7009 at the discovered revocation_endpoint, with the refresh token.
            revocation=Revocation(hint=True, auth="backend"),
            refresh="refresh tokens as the provider issues them (scope offline_access at some)",
            **common,
        )
    revocation = _revocation(declaration)
    return Profile(
        # A template names captured fields ("{instance_url}/services/data/v60.0").
        api_base_url=declaration.api_base_url,
        revocation=revocation,
        # Revoking with the access token needs a live one.
        refresh_before_revoke=revocation is not None and revocation.token == "access",  # noqa: S105
        account_name=userinfo_name if declaration.userinfo_url else None,
        select_account=declaration.select_account,
        refresh="refresh tokens as the provider issues them (RFC 6749 §6)",
        **common,
    )


def _revocation(declaration: ProviderDeclaration) -> Revocation | None:
    if declaration.revocation:
        rules = declaration.rules
        # The declaration's headers go with it (Notion wants its version there too), and an
        # HTTP-200 answer that error_rules call an error (Slack's {"ok": false}) is a refusal.
        return Revocation(
            **declaration.revocation,
            headers=dict(declaration.headers),
            confirm=(lambda response: not rules.is_error(_json(response)))
            if rules.error_when is not None
            else None,
        )
    if declaration.revocation_url:
        # The short form: RFC 7009 with the refresh token (revoking it also ends the grant's
        # access tokens), the client authenticated as at the token endpoint.
        return Revocation(url=declaration.revocation_url, hint=True, auth="backend")
    return None


def _json(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
