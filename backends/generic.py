"""Providers declared in settings become backends without new code.

A declaration in ``settings.CUSTODIAN_PROVIDERS`` (schema: backends/declaration.py; guide:
docs/adding-a-provider.md)::

    "strava": {
        "title": "Strava",
        "authorization_url": "https://www.strava.com/oauth/authorize",
        "token_url": "https://www.strava.com/oauth/token",
        "api_base_url": "https://www.strava.com/api/v3",
        "id_key": "athlete.id",
        "scopes": ["read", "activity:read_all"], "scope_separator": ",",
        "client_id": "...", "client_secret": "...",
    }

becomes this backend (the handshake) plus a profile (backends/declared_profile.py: what
Custodian adds). The declaration is read at call time, not import time, so settings
overrides (tests, a reconfigured site) take effect without reloading backends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from requests.auth import AuthBase, HTTPBasicAuth
from social_core.backends.oauth import BaseOAuth2, BaseOAuth2PKCE
from social_core.exceptions import AuthProviderError

from backends.base import CustodianBackend, grant_gone
from backends.credentials import ABSOLUTE_AFTER
from backends.declaration import ProviderDeclaration, dig

__all__ = ["Declared", "DeclaredOAuth2", "ProviderDeclaration", "declared_backend"]

# Where the login's token answer keeps the captured fields of the callback's query.
CALLBACK_KEY = "custodian_callback"


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
    """An OAuth 2.0 authorization-code provider described by a declaration."""

    @property
    def ID_KEY(self) -> str:  # type: ignore[override]
        return self.declaration.id_key

    @property
    def DEFAULT_SCOPE(self) -> list[str]:  # type: ignore[override]
        return list(self.declaration.scopes)

    @property
    def SCOPE_SEPARATOR(self) -> str:  # type: ignore[override]
        return self.declaration.scope_separator

    def authorization_url(self) -> str:
        return self.declaration.authorization_url

    def access_token_url(self) -> str:
        return self.declaration.token_url

    def auth_params(self, state: str | None = None) -> dict[str, Any]:
        """The standard parameters, plus the declaration's `auth_params` (Dropbox's
        token_access_type=offline, Notion's owner=user)."""
        return {**super().auth_params(state), **self.declaration.auth_params}

    # --- the token endpoint -------------------------------------------------------------

    def use_basic_auth(self) -> bool:
        return self.declaration.token_auth == "client_secret_basic"

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

    def auth_headers(self) -> dict[str, str | bytes]:
        """The token requests' headers, naming the body's real encoding: social-core's name
        a form, and requests keeps an explicit Content-Type even for a JSON body, which the
        provider then reads as a broken form (Notion: 400 invalid_json)."""
        headers = dict(super().auth_headers())
        if self.declaration.token_body == "json":
            headers["Content-Type"] = "application/json"
        return headers

    def request(self, url: str, *args: Any, **kwargs: Any) -> Any:
        """Every call leaves through here: a token request is sent as JSON when the
        declaration says `token_body: json` (Notion)."""
        declaration = self.declaration
        if (
            declaration.token_body == "json"
            and url == declaration.token_url
            and kwargs.get("data") is not None
        ):
            kwargs["json"], kwargs["data"] = kwargs.pop("data"), None
        return super().request(url, *args, **kwargs)

    def request_access_token(self, *args: Any, **kwargs: Any) -> Any:
        return self._token_answer(super().request_access_token(*args, **kwargs), "token_exchange")

    def process_refresh_token_response(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        data = super().process_refresh_token_response(response, *args, **kwargs)
        return self._token_answer(data, "refresh")

    def _token_answer(self, data: Any, stage: Any) -> Any:
        """Read a token answer the way the declaration describes it: an HTTP-200 error body
        is an error (`error_rules`), the tokens may sit deeper (`token_response_path`), the
        refresh token may have its own lifetime (`refresh_token_expires_key`)."""
        declaration = self.declaration
        if declaration.rules.is_error(data):
            raise self.get_provider_error(data, stage=stage, status_code=200) or AuthProviderError(
                self, code="http_error", stage=stage, status_code=200
            )
        if not isinstance(data, Mapping):
            return data
        answer = dict(data)
        if stage == "token_exchange":
            # Fields of the callback's query the declaration captures (QuickBooks' realmId),
            # kept with the answer: the pipeline may pause (a new-or-existing account choice)
            # and resume on another request, whose query no longer has them.
            callback = self.data or {}
            answer[CALLBACK_KEY] = {
                path: callback[path]
                for path in declaration.capture
                if isinstance(callback.get(path), str) and 0 < len(callback[path]) <= 256
            }
        if declaration.token_response_path:
            nested = dig(data, declaration.token_response_path)
            if isinstance(nested, Mapping):
                answer.update(nested)
            self._token_response_received(answer)  # the nested tokens, for redaction
        if declaration.refresh_token_expires_key:
            lifetime = dig(data, declaration.refresh_token_expires_key)
            if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool):
                seconds = int(lifetime)
                answer["refresh_token_expires_at"] = (
                    seconds if seconds > ABSOLUTE_AFTER else int(time.time()) + seconds
                )
        return answer

    def get_provider_error(
        self,
        data: object,
        *,
        stage: Any = "callback",
        status_code: int | None = None,
        retry_after: str | None = None,
    ) -> Any:
        """The declaration's `error_rules`: its code key, and the codes meaning "reconnect".

        They describe the provider's answers, not the callback: the redirect back carries
        RFC 6749's `error`, and its `code` is the authorization code (Notion's code_key is
        "code": read there, every login would fail with its own code as the error).
        """
        if stage == "callback":
            return super().get_provider_error(
                data, stage=stage, status_code=status_code, retry_after=retry_after
            )
        rules = self.declaration.rules
        code = rules.code(data)
        if code and rules.reconnect and code.startswith(rules.reconnect):
            return grant_gone(self, code, stage=stage, status_code=status_code)
        if code and rules.code_key != "error" and isinstance(data, Mapping):
            data = {**data, "error": code}  # social-core reads OAuth's `error`
        return super().get_provider_error(
            data, stage=stage, status_code=status_code, retry_after=retry_after
        )

    # --- who the user is --------------------------------------------------------------------

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The userinfo document, or nothing when the declaration has no userinfo URL (the
        id then comes from the token response, which social-core merges with this)."""
        declaration = self.declaration
        if not declaration.userinfo_url:
            return {}
        return self.get_json(
            declaration.userinfo_url,
            method="POST" if declaration.userinfo_method == "POST" else "GET",
            headers={**declaration.headers, "Authorization": f"Bearer {access_token}"},
        )

    def get_user_id(self, details: dict[str, Any], response: dict[str, Any]) -> Any:
        return dig(response, self.declaration.id_key)

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        declaration = self.declaration
        username = dig(response, declaration.username_key or "username") or dig(
            response, declaration.id_key
        )
        details: dict[str, Any] = {"username": str(username or "")}
        for key in ("email", "first_name", "last_name"):
            if isinstance(response.get(key), str):
                details[key] = response[key]
        if isinstance(response.get("name"), str):
            details["fullname"] = response["name"]
        return details

    def extra_data(
        self,
        user: Any,
        uid: str,
        response: dict[str, Any],
        details: dict[str, Any] | None = None,
        pipeline_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """social-core's extra data, plus the declaration's `capture`: fields of the token
        response, else of the callback's query (QuickBooks' realmId), stored under the path
        as written; and the refresh token's own expiry."""
        data = super().extra_data(user, uid, response, details or {}, pipeline_kwargs or {})
        callback = response.get(CALLBACK_KEY) or {}
        for path in self.declaration.capture:
            value = dig(response, path)
            if value is None:
                value = callback.get(path)
            if value is not None:
                data[path] = value
        if response.get("refresh_token_expires_at"):
            data["refresh_token_expires_at"] = response["refresh_token_expires_at"]
        return data


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
