"""What every Custodian backend adds to a Python Social Auth backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from social_core.exceptions import AuthConfigurationError, AuthCredentialError, AuthInputError

if TYPE_CHECKING:
    from social_core.backends.oauth import BaseOAuth2

    # Every Custodian backend is mixed into an OAuth 2.0 backend; to the type checker it is one.
    _Backend = BaseOAuth2
else:
    _Backend = object


class CustodianBackend(_Backend):
    """Mixin for Custodian's own backends: the handshake details every one of them shares.

    What Custodian adds beyond the handshake (API base, revocation, approval, account name,
    reauth codes, keep-alive) is not here but in the provider's profile
    (backends/profiles/), looked up by backend name, so that stock social-core backends get
    it too. Nothing outside backends/ may assume this class.
    """

    name: str

    def auth_url(self) -> str:
        """Refuse to start a login with no client configured, with a clear page, not a crash."""
        if not self.get_key_and_secret()[0]:
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


def grant_gone(backend: Any, code: str, *, stage: Any, status_code: int | None) -> Any:
    """The error for a provider code that means the grant is gone: at a refresh, "only a new
    login helps" (reauthentication_required); at the login's code exchange, the code was
    refused."""
    return AuthCredentialError(
        backend,
        code="reauthentication_required" if stage == "refresh" else "authorization_code_rejected",
        source="provider_response",
        stage=stage,
        provider_code=code,
        status_code=status_code,
    )
