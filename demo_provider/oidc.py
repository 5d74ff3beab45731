"""OpenID Connect on top of the OAuth 2.0 demo: the discovery document, the signing keys
(JWKS), and which clients may ask for OpenID scopes.

The issuer is the provider's own base URL: DOT derives it from where the discovery view
is mounted (``/.well-known/openid-configuration`` at the root, see urls.py), so one
process serves whichever loopback port it was given without being told its URL.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from oauth2_provider import views as dot_views
from oauth2_provider.models import AbstractApplication
from oauth2_provider.scopes import SettingsScopes

from .controls import STATE

OPENID_SCOPES = frozenset({"openid", "profile", "email"})
GRANT_TYPES = ["authorization_code", "refresh_token"]


class DiscoveryView(dot_views.ConnectDiscoveryInfoView):
    """DOT's OpenID Provider metadata, counted, plus what DOT leaves out.

    DOT's OIDC document has no ``revocation_endpoint`` (only its RFC 8414 one does), yet a
    relying party configured by issuer alone finds revocation nowhere else. The grant
    types are said outright: the default a reader assumes (code and implicit) is wrong
    for this server, which refuses implicit flows.
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        STATE.count_discovery()
        response = super().get(request, *args, **kwargs)
        document = json.loads(response.content)
        document["revocation_endpoint"] = self._get_endpoint_url(
            request, "revoke-token", required=True
        )
        document["revocation_endpoint_auth_methods_supported"] = document[
            "token_endpoint_auth_methods_supported"
        ]
        document["grant_types_supported"] = GRANT_TYPES
        response.content = json.dumps(document)
        return response


class JwksView(dot_views.JwksInfoView):
    """DOT's JSON Web Key Set, counted (tests prove a site caches it)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        STATE.count_jwks()
        return super().get(request, *args, **kwargs)


class DemoScopes(SettingsScopes):
    """Every configured scope, except that only a client that signs ID tokens may ask for
    the OpenID ones: asking for ``openid`` makes DOT mint an ID token, and for a client
    with no signing algorithm that fails half-way through the token call (a 500)."""

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        scopes: list[str] = super().get_available_scopes(application, request, *args, **kwargs)
        if application is None or application.algorithm != AbstractApplication.NO_ALGORITHM:
            return scopes
        return [scope for scope in scopes if scope not in OPENID_SCOPES]
