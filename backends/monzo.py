"""Monzo, written for today's API (docs.monzo.com, "Authentication").

social-core's own MonzoOAuth2 sends users to the retired Mondo host, stores only `user_id`
(so it can never refresh) and calls `/accounts` during login, which answers 403 until the user
approves access in the Monzo app. This one:

- authorizes at `MONZO_AUTH_URL` (default https://auth.monzo.com/), exchanges and refreshes at
  `{MONZO_API_URL}/oauth2/token` with the client credentials in the POST body;
- takes the uid from the token response's `user_id` (else `GET /ping/whoami`), never
  `/accounts`;
- revokes with `POST /oauth2/logout` and the bearer token (Monzo has no RFC 7009 endpoint),
  refreshing an expired access token first;
- knows when access awaits approval in the Monzo app: `/accounts` answers 403, and so does
  any data endpoint later with `forbidden.insufficient_permissions` or
  `forbidden.verification_required`;
- reads Monzo's error `code`s (`unauthorized.bad_refresh_token[.evicted]`) as "reconnect".
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from social_core.backends.oauth import BaseOAuth2
from social_core.exceptions import SocialAuthBaseException

from backends.base import CustodianBackend, grant_gone
from backends.profiles import Profile, Revocation, register


class MonzoOAuth2(CustodianBackend, BaseOAuth2):
    """Monzo OAuth 2.0 (confidential client; refresh tokens rotate on every use)."""

    name = "monzo"
    title = "Monzo"
    ID_KEY = "user_id"
    EXTRA_DATA = [("user_id", "user_id")]  # noqa: RUF012 -- social-core declares it a list
    # Monzo compares redirect_uri exactly; state travels in the `state` parameter only.
    REDIRECT_STATE = False
    STATE_PARAMETER = True

    def api_base_url(self) -> str:
        return settings.MONZO_API_URL.rstrip("/")

    def authorization_url(self) -> str:
        return settings.MONZO_AUTH_URL

    def access_token_url(self) -> str:
        return f"{self.api_base_url()}/oauth2/token"

    def get_key_and_secret(self) -> tuple[str, str]:
        return settings.MONZO_CLIENT_ID, settings.MONZO_CLIENT_SECRET

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        response = kwargs.get("response") or {}
        if response.get("user_id"):
            return {}
        return self.get_json(
            f"{self.api_base_url()}/ping/whoami",
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        # Monzo shares no name or e-mail at login; the account id is the only stable handle.
        return {"username": str(response.get("user_id", ""))}

    def get_provider_error(
        self,
        data: object,
        *,
        stage: Any = "callback",
        status_code: int | None = None,
        retry_after: str | None = None,
    ) -> SocialAuthBaseException | None:
        code = data.get("code") if isinstance(data, dict) else None
        if isinstance(code, str) and MONZO.is_reauth_code(code):
            return grant_gone(self, code, stage=stage, status_code=status_code)
        return super().get_provider_error(
            data, stage=stage, status_code=status_code, retry_after=retry_after
        )


def _accounts(backend: Any, access_token: str) -> requests.Response | None:
    """GET /accounts once per token and backend instance: the approval check and the account
    name read the same answer."""
    cached = getattr(backend, "_accounts_answer", None)
    if cached is not None and cached[0] == access_token:
        return cached[1]
    try:
        response: requests.Response | None = requests.get(
            f"{settings.MONZO_API_URL.rstrip('/')}/accounts",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.CUSTODIAN_HTTP_TIMEOUT,
        )
    except requests.RequestException:
        response = None
    backend._accounts_answer = (access_token, response)
    return response


def check_approval(backend: Any, access_token: str) -> bool | None:
    """Monzo answers 403 on data endpoints until the user approves in the Monzo app."""
    response = _accounts(backend, access_token)
    if response is None:
        return None
    if response.status_code == 403:
        return False
    return response.status_code == 200 or None


def account_name(backend: Any, access_token: str) -> str:
    """The first account owner's preferred name (`description` can be an opaque id)."""
    response = _accounts(backend, access_token)
    if response is None or response.status_code != 200:
        return ""
    try:
        accounts = response.json().get("accounts") or []
    except ValueError:
        return ""
    if not accounts:
        return ""
    owners = accounts[0].get("owners") or []
    preferred = owners[0].get("preferred_name") if owners else None
    return str(preferred or accounts[0].get("description") or "")[:100]


MONZO = Profile(
    name="monzo",
    title="Monzo",
    api_base_url=lambda backend, data: settings.MONZO_API_URL,
    # Logout takes the access token; afterwards the refresh token is dead too. Access tokens
    # live hours, so an idle association's has expired by the time it is disconnected.
    revocation=Revocation(url="{api_base_url}/oauth2/logout", token="access", placement="bearer"),
    refresh_before_revoke=True,
    approval=check_approval,
    # A data endpoint's 403 with these codes: access needs approving in the app (again).
    approval_codes=("forbidden.insufficient_permissions", "forbidden.verification_required"),
    account_name=account_name,
    # No connected_apps_url or sign_out_url: both live in the Monzo app, not on the web.
    # Error codes that mean the grant is gone and only a new login helps.
    reauth_codes=("unauthorized.bad_refresh_token", "unauthorized.bad_authorization_code"),
    refresh="rotates the refresh token on every use (one-time); confidential clients only",
    sources=("docs.monzo.com, Authentication",),
)
register(MONZO)
