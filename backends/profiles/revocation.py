"""How a grant is ended at its provider: one description, one executor.

Providers disagree on everything about revocation: RFC 7009 (`POST token=…`, client
authentication, a `token_type_hint`), GitHub (`DELETE` with Basic auth and a JSON body),
Monzo (`POST /oauth2/logout` with the bearer token), Strava (`access_token=` in a form),
OpenID Connect providers (the `revocation_endpoint` of their discovery document). A
`Revocation` says which of these a provider does; `revoke()` carries it out through the
backend's own HTTP call (`BaseAuth.request`), so timeouts, proxies and error mapping are
Python Social Auth's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from social_core.exceptions import SocialAuthBaseException

if TYPE_CHECKING:
    from backends.credentials import Credentials

TokenKind = Literal["access", "refresh"]
Placement = Literal["form", "json", "query", "bearer"]
# "backend": whichever the backend uses at its token endpoint (Basic when use_basic_auth());
# "client_id": the client id alone, no secret (Twitch).
ClientAuth = Literal["basic", "post", "none", "backend", "client_id"]
TOKEN_KINDS = ("access", "refresh")
PLACEMENTS = ("form", "json", "query", "bearer")
CLIENT_AUTHS = ("basic", "post", "none", "backend", "client_id")
METHODS = ("POST", "GET", "DELETE")
# `url` value meaning "ask the backend": its revoke_token_url(), which for OpenID Connect
# backends is the discovery document's revocation_endpoint.
FROM_BACKEND = ""


@dataclass(frozen=True)
class Revocation:
    """One provider's way of revoking a grant.

    `url` may name `{client_id}` and `{api_base_url}`; empty, it is the backend's own
    `revoke_token_url()` (the discovered endpoint of an OpenID provider); a callable gets the
    backend (for endpoints on a host the site configures: a Keycloak realm, an Okta org).
    `token` says which token is revoked; "refresh" falls back to the access token when there
    is none, and revoking the refresh token ends the whole grant (RFC 7009 §2.1). `confirm`
    reads a 2xx answer for providers that report failure inside one (Slack's `"ok": false`).
    """

    url: str | Callable[[Any], str] = FROM_BACKEND
    method: str = "POST"
    token: TokenKind = "refresh"
    placement: Placement = "form"
    auth: ClientAuth = "none"
    # The token's field name in a form, JSON body or query string.
    param: str = "token"
    # Send RFC 7009's token_type_hint with it.
    hint: bool = False
    # (response) -> whether a 2xx answer confirms the revocation; None: any 2xx does.
    confirm: Callable[[requests.Response], bool] | None = None
    # Headers the endpoint needs besides the token and the client's (Notion-Version).
    headers: Mapping[str, str] = field(default_factory=dict)

    def describe(self, *, client_id: str = "{client_id}", api_base_url: str = "") -> str:
        """One line for operators (`manage.py providers`)."""
        if callable(self.url):
            where = (self.url.__doc__ or "a URL from the backend's settings").strip()
        elif self.url:
            where = self.url.format(
                client_id=client_id, api_base_url=api_base_url or "{api_base_url}"
            )
        else:
            where = "the discovered revocation_endpoint"
        how = "as bearer" if self.placement == "bearer" else f"as {self.param} ({self.placement})"
        client = {
            "basic": ", client by HTTP Basic",
            "post": ", client in the body",
            "backend": ", client as at the token endpoint",
            "client_id": ", client id in the body",
        }.get(self.auth, "")
        hint = " with token_type_hint" if self.hint else ""
        return f"{self.method} {where}, {self.token} token {how}{hint}{client}"

    def revoke(
        self, backend: Any, credentials: Credentials, uid: str, *, api_base_url: str = ""
    ) -> bool:
        """End the grant; True when the provider confirmed it.

        Raises the backend's SocialAuthBaseException (or requests') when the provider
        cannot be reached; a refusal (an error status) is False.
        """
        token, kind = credentials.access_token, "access_token"
        if self.token == "refresh" and credentials.refresh_token:
            token, kind = credentials.refresh_token, "refresh_token"
        client_id, client_secret = backend.get_key_and_secret()
        if callable(self.url):
            url = self.url(backend)
        elif self.url:
            url = self.url.format(client_id=client_id, api_base_url=api_base_url.rstrip("/"))
        else:
            url = backend.revoke_token_url(token, uid)
        if not url:
            raise ValueError(f"{backend.name} has no revocation endpoint")
        fields: dict[str, str] = {}
        headers: dict[str, str] = dict(self.headers)
        auth: AuthBase | None = None
        if self.placement == "bearer":
            headers["Authorization"] = f"Bearer {token}"
        else:
            fields[self.param] = token
            if self.hint:
                fields["token_type_hint"] = kind
        client_auth = self.auth
        if client_auth == "backend":
            client_auth = "basic" if backend.use_basic_auth() else "post"
        if client_auth == "basic":
            auth = HTTPBasicAuth(client_id, client_secret)
        elif client_auth == "post":
            fields.update(client_id=client_id, client_secret=client_secret)
        elif client_auth == "client_id":
            fields["client_id"] = client_id
        body: dict[str, Any] = {}
        if self.placement == "json":
            body["json"] = fields
        elif self.placement == "query" or self.method == "GET":
            body["params"] = fields
        elif fields:
            body["data"] = fields
        try:
            response = backend.request(
                url, method=self.method, headers=headers, auth=auth, stage="disconnect", **body
            )
        except SocialAuthBaseException as error:
            if getattr(error, "status_code", None) is not None:
                return False  # the provider answered, and refused
            raise
        if not 200 <= response.status_code < 300:
            return False
        return self.confirm(response) if self.confirm else True


def social_core_revoke(backend: Any, credentials: Credentials, uid: str) -> bool | None:
    """The default of a backend without a profile: social-core's own `revoke_token`, when the
    backend names a REVOKE_TOKEN_URL; None (no revocation) otherwise."""
    if not getattr(backend, "REVOKE_TOKEN_URL", "") and not backend.setting("REVOKE_TOKEN_URL"):
        return None
    return backend.revoke_token(credentials.access_token, uid)
