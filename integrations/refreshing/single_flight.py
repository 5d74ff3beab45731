"""Single-flight token refresh: lock the row, re-read, call the backend once, persist, classify.

Providers that rotate refresh tokens (Monzo, Strava, Xero, any RFC 9700 server) reject a
refresh token used twice, and many then revoke the whole grant. So however many threads,
processes or hosts find a token due at once, exactly one of them may call the token endpoint:
each takes the association's row lock (SELECT ... FOR UPDATE on PostgreSQL; an IMMEDIATE
transaction on SQLite), re-reads the credentials inside it, and refreshes only if they are
still the ones it saw. The others wait on the lock and then use what the first one stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from django.conf import settings
from django.db import transaction
from social_core.exceptions import AuthCredentialError, SocialAuthBaseException
from social_django.models import UserSocialAuth

from integrations.exceptions import CredentialsUnreadable, ReauthRequired, RefreshFailed
from integrations.models import CredentialEvent
from integrations.providers.registry import backend_instance
from integrations.providers.registry import profile as provider_profile
from integrations.signals import credentials_refreshed, reauth_required
from integrations.store import crypto
from integrations.store.credentials import Credentials, Status, fingerprint, read_credentials
from integrations.store.history import record_event
from integrations.store.statements import lock_association
from integrations.store.writes import patch_association, token_response_patch

logger = logging.getLogger(__name__)

# What a token call raises when the provider (or the way to it) is at fault: social-core's
# errors, requests' errors, and an answer it could not read.
PROVIDER_TROUBLE = (
    SocialAuthBaseException,
    requests.RequestException,
    ValueError,
    KeyError,
    TypeError,
)

# The reauth reason of an invalid_grant that follows such a refresh.
RESPONSE_LOST = "refresh_response_lost"


def refresh(association: UserSocialAuth, force: bool = False, *, actor: Any = None) -> Credentials:
    """Refresh the association's token if it is due (or always, with `force`); return it fresh.

    Usable without a session: by the admin, the background job, the shell. `actor` (a user)
    is recorded in the credential history.
    """
    try:
        read_credentials(association.extra_data or {})
    except crypto.DecryptionError:
        raise CredentialsUnreadable(association.provider, association.uid) from None
    return renew(association, force=force, actor=actor).credentials


def refresh_if_due(
    association: UserSocialAuth, *, leeway: float | None = None, actor: Any = None
) -> Credentials:
    """Return fresh credentials, refreshing first when they expire within the leeway."""
    return renew(association, leeway=leeway, actor=actor).credentials


@dataclass(frozen=True)
class Renewal:
    """What a refresh call found: the credentials to use, and whether *this* call refreshed
    them (False when they were not due, or another caller had refreshed them meanwhile)."""

    credentials: Credentials
    refreshed: bool


def renew(
    association: UserSocialAuth,
    *,
    force: bool = False,
    leeway: float | None = None,
    actor: Any = None,
) -> Renewal:
    """Refresh single-flight when due within `leeway` (default CUSTODIAN_REFRESH_LEEWAY), or
    always with `force`; say whether this call refreshed.

    Forced, it is still single-flight: a caller that waited on the lock while another
    refreshed the very token it saw uses that result instead of refreshing again.
    """
    if force:
        try:
            seen = read_credentials(association.extra_data or {})
        except crypto.DecryptionError:
            raise CredentialsUnreadable(association.provider, association.uid) from None
        return _refresh_locked(
            association, lambda current: current.access_token == seen.access_token, actor=actor
        )
    window = settings.CUSTODIAN_REFRESH_LEEWAY if leeway is None else leeway
    return _refresh_locked(
        association, lambda current: current.expires_within(window, now=time.time()), actor=actor
    )


def refresh_after_rejection(association: UserSocialAuth, rejected_access_token: str) -> Credentials:
    """Return credentials to retry with after the API answered 401 to `rejected_access_token`.

    When the stored token changed meanwhile (another caller refreshed; Monzo invalidates the
    old access token at once), that one is used without refreshing again.
    """
    return _refresh_locked(
        association, lambda current: current.access_token == rejected_access_token
    ).credentials


@dataclass
class RowOutcome:
    credentials: Credentials
    refreshed: bool = False
    reauth_reason: str = ""
    newly_flagged: bool = False
    failure: RefreshFailed | None = None
    failure_detail: str = ""
    unreadable: bool = False
    # The sealed fields a refresh writes (patch_association), when it is not written yet.
    pending: dict[str, Any] | None = None


@dataclass(frozen=True)
class Answer:
    """What the token endpoint said to a refresh: its response, or the error social-core or
    requests raised for it (provider trouble, classified by _settle)."""

    response: Any = None
    error: Exception | None = None


def _refresh_locked(
    association: UserSocialAuth,
    needs_refresh: Callable[[Credentials], bool],
    *,
    actor: Any = None,
) -> Renewal:
    with transaction.atomic():
        row = lock_association(association.pk)
        if row is None:
            raise UserSocialAuth.DoesNotExist(f"association {association.pk} is gone")
        outcome = _refresh_row(row, needs_refresh)
        if outcome.refreshed and actor is None:
            # Committed with the refresh (one commit fewer per token in a background sweep).
            # Not with an actor: their row is checked only at commit on PostgreSQL, and an
            # actor deleted meanwhile must not roll back tokens the provider has rotated.
            record_event(row, CredentialEvent.Kind.REFRESHED)
    return finish(association, row, outcome, actor=actor)


def finish(
    association: UserSocialAuth, row: UserSocialAuth, outcome: RowOutcome, *, actor: Any = None
) -> Renewal:
    """A refresh's side effects once its transaction is over (receivers see committed state,
    and a failure's history entry is not rolled back with it); raise what the outcome says."""
    association.extra_data = row.extra_data
    if outcome.unreadable:
        record_event(
            row, CredentialEvent.Kind.REFRESH_FAILED, actor=actor, detail="credentials_unreadable"
        )
        raise CredentialsUnreadable(row.provider, row.uid)
    if outcome.failure is not None:
        record_event(
            row,
            CredentialEvent.Kind.REFRESH_FAILED,
            actor=actor,
            detail=outcome.failure_detail or outcome.failure.cause,
        )
        raise outcome.failure
    if outcome.reauth_reason:
        if outcome.newly_flagged:
            record_event(
                row, CredentialEvent.Kind.REAUTH_REQUIRED, actor=actor, detail=outcome.reauth_reason
            )
        reauth_required.send(
            sender=row.provider, association=row, reason=outcome.reauth_reason
        )
        raise ReauthRequired(row.provider, row.uid, outcome.reauth_reason)
    if outcome.refreshed:
        if actor is not None:
            record_event(row, CredentialEvent.Kind.REFRESHED, actor=actor)
        credentials_refreshed.send(sender=row.provider, association=row)
    return Renewal(outcome.credentials, outcome.refreshed)


def _refresh_row(row: UserSocialAuth, needs_refresh: Callable[[Credentials], bool]) -> RowOutcome:
    """Decide and do the refresh of a locked row. Never raises for provider trouble."""
    decided = decide(row, needs_refresh)
    if isinstance(decided, RowOutcome):
        return decided
    outcome = settle(row, decided, call(row, decided))
    if outcome.pending is not None:
        patch_association(row, outcome.pending, savepoint=False)
    return outcome


def decide(
    row: UserSocialAuth, needs_refresh: Callable[[Credentials], bool]
) -> RowOutcome | Credentials:
    """What to do with a locked row: the outcome when no token call is to be made, else the
    current credentials to refresh."""
    try:
        current = read_credentials(row.extra_data or {})
    except crypto.DecryptionError:
        # Never overwritten here: restoring the missing key makes the row readable again.
        return RowOutcome(Credentials("", None, "Bearer", "", None, Status.ACTIVE), unreadable=True)
    if current.status == Status.REAUTH_REQUIRED:
        return RowOutcome(current, reauth_reason="reauthentication_required")
    if not needs_refresh(current):
        return RowOutcome(current)
    if not current.refresh_token:
        # Public clients get no refresh token (Monzo): only a new login helps.
        return _mark_reauth(row, current, "no_refresh_token")
    refresh_expires_at = (row.extra_data or {}).get("refresh_token_expires_at")
    if isinstance(refresh_expires_at, int) and refresh_expires_at <= time.time():
        # The provider said when the refresh token dies: sending it now only earns an
        # invalid_grant (and, at some providers, a strike against the client).
        return _mark_reauth(row, current, "refresh_token_expired")
    return current


def call(row: UserSocialAuth, current: Credentials) -> Answer:
    """The token call itself; touches no database, so it may run on any thread while the row's
    lock is held by another (a background sweep's chunk)."""
    backend = backend_instance(row.provider)
    try:
        return Answer(response=backend.refresh_token(current.refresh_token))
    except PROVIDER_TROUBLE as error:
        return Answer(error=error)


def settle(row: UserSocialAuth, current: Credentials, answer: Answer) -> RowOutcome:
    """The outcome of a token call: new tokens to write (`pending`), or the failure."""
    error = answer.error
    if isinstance(error, SocialAuthBaseException):
        if _means_reconnect(row.provider, error):
            return _on_rejected_grant(row, current, error)
        return _failed(row, current, error.code, error)
    if error is not None:
        return _failed(row, current, type(error).__name__, error)
    now = time.time()
    fields, fresh = token_response_patch(
        row,
        answer.response,
        previous_refresh_token=current.refresh_token,
        now=now,
        extra={"refreshed_at": int(now)},
    )
    # Routine (the history has it, and a sweep's summary counts it): not worth an INFO line
    # per token when thousands are refreshed at once.
    logger.debug("Refreshed %s token of association %s", row.provider, row.pk)
    return RowOutcome(fresh, refreshed=True, pending=fields)


def _means_reconnect(provider: str, error: SocialAuthBaseException) -> bool:
    """invalid_grant and its kin (social-core's reading), or a code the provider's profile
    lists as "the grant is gone" (Monzo's unauthorized.bad_refresh_token; Zoom's reason
    "Invalid Token!", which the profile reads from the body)."""
    if isinstance(error, AuthCredentialError) and error.code == "reauthentication_required":
        return True
    return provider_profile(provider).is_reauth_error(error)


def _on_rejected_grant(
    row: UserSocialAuth, used: Credentials, error: SocialAuthBaseException
) -> RowOutcome:
    """Handle invalid_grant: re-read first, since another host may have rotated meanwhile."""
    latest_data = (
        UserSocialAuth.objects.filter(pk=row.pk).values_list("extra_data", flat=True).first()
        or {}
    )
    latest = read_credentials(latest_data)
    if latest.refresh_token and latest.refresh_token != used.refresh_token:
        row.extra_data = latest_data
        return RowOutcome(latest)
    if CredentialEvent.objects.filter(
        association_id=row.pk,
        kind=CredentialEvent.Kind.REFRESH_FAILED,
        detail__endswith=_in_doubt_marker(used.refresh_token),
    ).exists():
        # An earlier refresh with this very token never got its answer: the provider most
        # likely rotated then, and the new tokens were lost in transit.
        return _mark_reauth(row, used, RESPONSE_LOST)
    code = provider_profile(row.provider).provider_code(error)
    return _mark_reauth(row, used, str(code or error.code))


def _mark_reauth(row: UserSocialAuth, current: Credentials, reason: str) -> RowOutcome:
    """Flag the row for reconnect; the stored tokens stay as they were (nothing is lost)."""
    patch = {"status": Status.REAUTH_REQUIRED, "status_reason": reason}
    patch_association(row, patch)
    logger.warning("Association %s (%s) needs reconnecting: %s", row.pk, row.provider, reason)
    return RowOutcome(current, reauth_reason=reason, newly_flagged=True)


def _failed(row: UserSocialAuth, current: Credentials, cause: str, error: Exception) -> RowOutcome:
    logger.warning("Refreshing association %s (%s) failed: %s", row.pk, row.provider, cause)
    failure = RefreshFailed(row.provider, row.uid, cause)
    failure.__cause__ = error
    detail = cause
    if _answer_lost(error):
        # The request may have reached the provider, which may then have rotated the refresh
        # token. The history remembers which token was spent in doubt, so that a following
        # invalid_grant can be told apart (the stored credentials stay byte-for-byte).
        detail = f"{cause}; {_in_doubt_marker(current.refresh_token)}"
    return RowOutcome(current, failure=failure, failure_detail=detail)


def _in_doubt_marker(refresh_token: str | None) -> str:
    return f"answer lost, refresh token fp {fingerprint(refresh_token)}"


def _answer_lost(error: BaseException) -> bool:
    """Return True when the token request was sent but its answer never arrived.

    social-core wraps requests' exceptions; the original is the chain's __cause__. A connect
    timeout or a refused connection never reached the provider, so nothing is in doubt.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, requests.ConnectTimeout):
            return False
        if isinstance(seen, (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError)):
            return True
        if isinstance(seen, requests.ConnectionError) and isinstance(
            seen.args[0] if seen.args else None,
            urllib3.exceptions.ProtocolError | urllib3.exceptions.ReadTimeoutError,
        ):
            # The connection dropped after the request went out, or the answer stopped
            # coming halfway (requests raises a timeout while reading a body this way).
            return True
        seen = seen.__cause__
    return False
