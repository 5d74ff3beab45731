"""What every Custodian backend adds to a Python Social Auth backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from social_core.exceptions import AuthConfigurationError, AuthInputError

if TYPE_CHECKING:
    from social_core.backends.oauth import BaseOAuth2

    from backends.credentials import Credentials

    # Every Custodian backend is mixed into an OAuth 2.0 backend; to the type checker it is one.
    _Backend = BaseOAuth2
else:
    _Backend = object


class CustodianBackend(_Backend):
    """Mixin naming the duties a provider backend has beyond the OAuth handshake.

    Subclasses must implement:
      - ``api_base_url()``: where relative URLs of ``get_session`` resolve.
      - ``is_configured()``: whether a client id is set, so the site can say "not configured"
        instead of crashing.
      - ``revoke_credentials()``: end the grant at the provider; return None when the provider
        offers no revocation.
    """

    name: str

    def api_base_url(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must say where its API lives")

    def api_hosts(self) -> tuple[str, ...]:
        """Other origins (``https://files.example.com``) the token may be sent to.

        ``get_session`` sends the token to the API base's origin and these, nowhere else.
        """
        return ()

    @classmethod
    def is_configured(cls) -> bool:
        raise NotImplementedError(f"{cls.__name__} must say whether it has a client id")

    def revoke_credentials(self, credentials: Credentials, uid: str) -> bool | None:
        raise NotImplementedError(f"{type(self).__name__} must say how it revokes a grant")

    def check_approval(self, access_token: str) -> bool | None:
        """Return whether the user has approved data access (None: cannot tell now).

        Most providers grant access with the OAuth consent itself; Monzo also needs an
        approval in its app (Strong Customer Authentication) and overrides this.
        """
        return True

    def account_name(self, access_token: str) -> str:
        """Return a friendly name for the connected account, fetched once; "" if none."""
        return ""

    def auth_url(self) -> str:
        """Refuse to start a login with no client configured, with a clear page, not a crash."""
        if not self.is_configured():
            raise AuthConfigurationError(
                self, code="invalid_setting", parameter="client_id", stage="begin"
            )
        return super().auth_url()

    def request_access_token(self, *args: Any, **kwargs: Any) -> Any:
        """Register the tokens of the login's token response for redaction by value at once:
        from here on they sit bare in frames (social-core's ``args``) that may be reported."""
        response = super().request_access_token(*args, **kwargs)
        self._token_response_received(response)
        return response

    def process_refresh_token_response(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Register the tokens of a refresh response, as above."""
        data = super().process_refresh_token_response(
            response, *args, **kwargs
        )
        self._token_response_received(data)
        return data

    def _token_response_received(self, response: Any) -> None:
        """Hand a token response to the strategy's hook, when it has one (Custodian's
        strategy registers its secrets for redaction); backends know nothing of the app."""
        hook = getattr(getattr(self, "strategy", None), "token_response_received", None)
        if callable(hook):
            hook(response)

    def auth_complete(self, *args: Any, **kwargs: Any) -> Any:
        """Refuse a callback with neither a code nor an error before calling the provider."""
        data = self.data
        if not data.get("error") and not data.get("code"):
            raise AuthInputError(self, parameter="code", code="missing_parameter", stage="callback")
        return super().auth_complete(*args, **kwargs)
