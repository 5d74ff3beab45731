"""The one catalogue of what people read when a provider or the OAuth flow fails.

Keyed by social-core's error code. Each entry has the sentence a person reads on the site
(`person`), the clause an admin reads in "Connecting ... failed: <clause>. Nothing was
connected." (`admin`), and, for bad input at the callback, the HTTP status to answer with.
Nothing here echoes what the provider sent. The login middleware and the admin's connect flow
both read it, so a new code is explained in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

_EXPIRED = (
    "This sign-in link has expired or was already used (for example in another tab). "
    "Nothing was connected. Please start again."
)
_STATE = (
    "the state check failed: this answer does not belong to a connection started in this "
    "session (expired, or already used)"
)


@dataclass(frozen=True)
class ErrorText:
    person: str
    admin: str
    status: HTTPStatus | None = None


# An OpenID provider's ID token that fails validation (social-core's codes).
_UNVERIFIED = ErrorText(
    "{provider}'s sign-in answer could not be verified, so nothing was connected. Please "
    "start again; if it keeps happening, tell the site's administrators.",
    "{provider}'s ID token failed validation ({code}); check the server clock and the "
    "client settings",
    HTTPStatus.BAD_REQUEST,
)

CATALOGUE: dict[str, ErrorText] = {
    **{
        code: _UNVERIFIED
        for code in (
            "response_expired", "response_not_yet_valid", "invalid_signature",
            "invalid_claim", "missing_claim", "nonce_mismatch",
        )
    },
    "authorization_declined": ErrorText(
        "You declined to give access at {provider}, so nothing was connected. You can try "
        "again whenever you like.",
        "access was declined at {provider} (access_denied)",
    ),
    "missing_parameter": ErrorText(
        "The answer from {provider} was incomplete, so nothing was connected. Please start "
        "again.",
        "the answer from {provider} was incomplete",
        HTTPStatus.BAD_REQUEST,
    ),
    "invalid_parameter": ErrorText(
        "Connecting to {provider} did not work, and nothing was changed. Please try again.",
        "the answer from {provider} was not valid",
        HTTPStatus.BAD_REQUEST,
    ),
    "session_context_missing": ErrorText(_EXPIRED, _STATE),
    "state_mismatch": ErrorText(_EXPIRED, _STATE),
    "identity_in_use": ErrorText(
        "This {provider} account is already linked to another user of this site, so it was "
        "not linked to yours. Log in as that user, or disconnect it there first.",
        "this {provider} account is already linked to another user; disconnect it there first",
        HTTPStatus.FORBIDDEN,
    ),
    "authorization_code_rejected": ErrorText(
        "{provider} did not accept the sign-in (the code was already used or has expired). "
        "Nothing was connected. Please start again.",
        "{provider} rejected the authorization code (already used or expired)",
        HTTPStatus.BAD_REQUEST,
    ),
    "connection_failed": ErrorText(
        "{provider} could not be reached. Nothing was changed; please try again in a moment.",
        "{provider} could not be reached",
    ),
    "timeout": ErrorText(
        "{provider} did not answer in time. Nothing was changed; please try again in a "
        "moment.",
        "{provider} did not answer in time",
    ),
    "unavailable": ErrorText(
        "{provider} is having trouble right now. Nothing was changed; please try again later.",
        "{provider} is having trouble (server error)",
    ),
    "rate_limited": ErrorText(
        "{provider} is busy right now. Nothing was changed; please try again in a few minutes.",
        "{provider} is rate limiting us",
    ),
    "malformed_response": ErrorText(
        "{provider} sent an answer we could not understand. Nothing was changed; please try "
        "again later.",
        "{provider} sent an answer we could not understand",
    ),
    "invalid_setting": ErrorText(
        "{provider} is not available on this site right now (it is not configured). Nothing "
        "was changed.",
        "{provider} is not configured on this site",
        HTTPStatus.SERVICE_UNAVAILABLE,
    ),
    "backend_missing": ErrorText(
        "Connecting to {provider} did not work, and nothing was changed. Please try again.",
        "{provider} is not enabled on this site",
    ),
    "account_inactive": ErrorText(
        "The account on this site that this {provider} account belongs to is disabled, so "
        "you were not logged in and nothing was changed.",
        "the user this {provider} account belongs to is disabled",
        HTTPStatus.FORBIDDEN,
    ),
    "account_choice_invalid": ErrorText(
        "This step of logging in does not belong to this browser, was already used, or was "
        "never chosen. Nothing was created or linked. Please log in again.",
        "the paused login does not belong to this session (or was already used)",
        HTTPStatus.FORBIDDEN,
    ),
    "account_choice_expired": ErrorText(
        "You took too long to choose, so this login has expired. Nothing was created or "
        "linked. Please log in with {provider} again.",
        "the paused login expired before a choice was made",
        HTTPStatus.GONE,
    ),
    "disconnect_disallowed": ErrorText(
        "This is the only way you can log in, so it cannot be disconnected yet. Set a "
        "password for this site (Password, at the top of the page) or link another account "
        "first.",
        "it is the user's only way to log in",
        HTTPStatus.FORBIDDEN,
    ),
}
DEFAULT = ErrorText(
    "Connecting to {provider} did not work, and nothing was changed. Please try again.",
    "an error occurred ({code})",
)


def for_person(code: str, provider: str) -> str:
    """The sentence a person reads when `code` happened with `provider`."""
    return CATALOGUE.get(code, DEFAULT).person.format(provider=provider, code=code)


def for_admin(code: str, provider: str) -> str:
    """The clause an admin reads when connecting `provider` failed with `code`."""
    return CATALOGUE.get(code, DEFAULT).admin.format(provider=provider, code=code)


def status_for(code: str) -> HTTPStatus | None:
    """Our HTTP status for `code`, when it is bad input rather than upstream trouble."""
    return CATALOGUE.get(code, DEFAULT).status
