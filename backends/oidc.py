"""A provider declared by its OpenID Connect issuer alone.

    "idp": {"issuer": "https://id.example", "client_id": "...", "client_secret": "...",
            "scopes": ["openid", "profile", "email", "offline_access"], "title": "Example ID"}

Everything else comes from the issuer's discovery document
(``{issuer}/.well-known/openid-configuration``): the authorization, token, userinfo and
revocation endpoints and the signing keys. The handshake is social-core's own
``OpenIdConnectAuth``: ID tokens are validated there (signature against the JWKS, iss, aud,
nonce, exp), and the uid is the ``sub`` claim. social-core caches the discovery document and
the keys per URL for a day (and fetches the keys again when a token names an unknown key
id), so neither is fetched per request.
"""

from __future__ import annotations

from typing import Any

from social_core.backends.open_id_connect import OpenIdConnectAuth

from backends.generic import Declared

DEFAULT_SCOPES = ["openid", "profile", "email"]


class DeclaredOIDC(Declared, OpenIdConnectAuth):  # type: ignore[override]  # PKCE per declaration
    """OpenID Connect configured from a declaration's issuer, by discovery."""

    def oidc_endpoint(self) -> str:
        return self.declaration.issuer.rstrip("/")

    @property
    def DEFAULT_SCOPE(self) -> list[str]:  # type: ignore[override]
        return list(self.declaration.scopes) or list(DEFAULT_SCOPES)

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        details = super().get_user_details(response)
        # A readable username when the provider gives none (sub can be an opaque id).
        if not details.get("username"):
            email = response.get("email")
            details["username"] = email.split("@")[0] if isinstance(email, str) else ""
        return details
