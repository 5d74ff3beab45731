"""Friendly pages for every failure of the login/link flow."""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest
from social_core.exceptions import SocialAuthBaseException
from social_django.middleware import SocialAuthExceptionMiddleware

from integrations.providers.registry import provider_title

# What a person should read, by social-core error code. Nothing here echoes provider input.
MESSAGES = {
    "authorization_declined": "You declined to give access at {provider}, so nothing was "
    "connected. You can try again whenever you like.",
    "missing_parameter": "The answer from {provider} was incomplete, so nothing was connected. "
    "Please start again.",
    "session_context_missing": "This sign-in link has expired or was already used (for "
    "example in another tab). Nothing was connected. Please start again.",
    "state_mismatch": "This sign-in link has expired or was already used (for example in "
    "another tab). Nothing was connected. Please start again.",
    "identity_in_use": "This {provider} account is already linked to another user of this "
    "site, so it was not linked to yours. Log in as that user, or disconnect it there first.",
    "authorization_code_rejected": "{provider} did not accept the sign-in (the code was "
    "already used or has expired). Nothing was connected. Please start again.",
    "connection_failed": "{provider} could not be reached. Nothing was changed; please try "
    "again in a moment.",
    "timeout": "{provider} did not answer in time. Nothing was changed; please try again in a "
    "moment.",
    "unavailable": "{provider} is having trouble right now. Nothing was changed; please try "
    "again later.",
    "rate_limited": "{provider} is busy right now. Nothing was changed; please try again in a "
    "few minutes.",
    "malformed_response": "{provider} sent an answer we could not understand. Nothing was "
    "changed; please try again later.",
    "invalid_setting": "{provider} is not available on this site right now (it is not "
    "configured). Nothing was changed.",
    "account_inactive": "The account on this site that this {provider} account belongs to "
    "is disabled, so you were not logged in and nothing was changed.",
    "disconnect_disallowed": "This is the only way you can log in, so it cannot be "
    "disconnected yet. Set a password for this site (Password, at the top of the page) or link another "
    "account first.",
}
DEFAULT_MESSAGE = "Connecting to {provider} did not work, and nothing was changed. Please try again."

# Our answers for bad input at the callback: the request was wrong (400) or not allowed (403).
STATUS_OVERRIDES = {
    "authorization_code_rejected": HTTPStatus.BAD_REQUEST,
    "invalid_parameter": HTTPStatus.BAD_REQUEST,
    "missing_parameter": HTTPStatus.BAD_REQUEST,
    "identity_in_use": HTTPStatus.FORBIDDEN,
    "account_inactive": HTTPStatus.FORBIDDEN,
    "disconnect_disallowed": HTTPStatus.FORBIDDEN,
    "invalid_setting": HTTPStatus.SERVICE_UNAVAILABLE,
}


class AuthErrorMiddleware(SocialAuthExceptionMiddleware):
    """Render social-auth failures as a page in the site's layout, with a clear message."""

    def get_message(self, request: HttpRequest, exception: Exception) -> str:
        backend = getattr(request, "backend", None)
        provider = provider_title(backend.name) if backend is not None else "The provider"
        code = getattr(exception, "code", "")
        return MESSAGES.get(code, DEFAULT_MESSAGE).format(provider=provider)

    def get_error_status(self, request: HttpRequest, exception: SocialAuthBaseException) -> int:
        status = STATUS_OVERRIDES.get(exception.code) or super().get_error_status(request, exception)
        # Whatever a provider or a crafted callback sends, the answer is never a 500: data
        # we could not use from upstream is a bad gateway.
        return HTTPStatus.BAD_GATEWAY if status == HTTPStatus.INTERNAL_SERVER_ERROR else status
