"""Backends a site might have written itself: plain social-core OAuth 2.0 backends that know
nothing of Custodian and have no profile. They talk to the loopback demo provider, whose
base URL the tests put in SOCIAL_AUTH_ACME_SERVER (a backend-specific setting, the way
social-core's own backends take theirs)."""

from __future__ import annotations

from typing import Any

from social_core.backends.oauth import BaseOAuth2PKCE


class AcmeOAuth2(BaseOAuth2PKCE):
    """A third-party backend that revokes with social-core's revoke_token."""

    name = "acme"
    title = "Acme"
    ID_KEY = "user_id"
    STATE_PARAMETER = True
    REDIRECT_STATE = False
    DEFAULT_USE_PKCE = True
    REVOKE_TOKEN_METHOD = "POST"

    def server(self) -> str:
        return str(self.setting("SERVER")).rstrip("/")

    def authorization_url(self) -> str:
        return f"{self.server()}/oauth2/authorize/"

    def access_token_url(self) -> str:
        return f"{self.server()}/oauth2/token"

    @property
    def REVOKE_TOKEN_URL(self) -> str:  # type: ignore[override]
        # The provider's logout endpoint ends the whole grant, given the access token.
        return f"{self.server()}/oauth2/logout"

    def revoke_token_url(self, token: str, uid: str) -> str:
        return self.REVOKE_TOKEN_URL

    def revoke_token_headers(self, token: str, uid: str) -> dict[str, Any]:
        return {"Authorization": f"Bearer {token}"}

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.get_json(
            f"{self.server()}/ping/whoami", headers={"Authorization": f"Bearer {access_token}"}
        )

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        return {"username": response.get("user_id", ""), "fullname": "Acme Person"}


class NoRevokeOAuth2(AcmeOAuth2):
    """The same, without a revocation endpoint."""

    name = "norevoke"
    title = "No Revoke"
    REVOKE_TOKEN_URL = ""

    def revoke_token_url(self, token: str, uid: str) -> str:
        return ""
