"""Disconnecting an association: the one service behind the user's disconnect (the
disconnect pipeline), the disconnect of a provider no longer offered, and the admin.

Revoke at the provider when it can (never blocking the disconnect on it), record what
happened in the history, delete the association. Providers that revoke with the access token
(the profile's `refresh_before_revoke`: Monzo's logout, Dropbox, Slack, Strava, Zoom, Twitch,
GitHub) get a live one: an idle association's has usually expired, and revoking with it would
fail and leave the grant alive. The refresh is the single flight every other caller uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from django.http import HttpRequest
from social_core.exceptions import SocialAuthBaseException
from social_django.models import UserSocialAuth

from integrations.exceptions import (
    CredentialsUnreadable,
    ProviderNotOffered,
    ReauthRequired,
    RefreshFailed,
)
from integrations.models import CredentialEvent
from integrations.providers.registry import backend_instance, provider_title
from integrations.providers.registry import profile as provider_profile
from integrations.refreshing.single_flight import refresh_if_due
from integrations.store import crypto
from integrations.store.credentials import Credentials, Status, read_credentials
from integrations.store.history import record_event

logger = logging.getLogger(__name__)

# Why a revocation was not tried (Disconnected.not_tried), for what people are told.
NOTHING_STORED = "nothing_stored"
NOT_OFFERED = "not_offered"
NO_REVOCATION = "no_revocation"
GRANT_ENDED = "grant_ended"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Disconnected:
    """What disconnect() did: revoked True (confirmed), False (failed or refused), or None
    (not tried); why, in words for the history and the admin; and, when not tried, which of
    NOTHING_STORED, NOT_OFFERED, NO_REVOCATION, GRANT_ENDED or SKIPPED it was."""

    revoked: bool | None
    reason: str
    not_tried: str = ""


def revoke_at_provider(
    association: UserSocialAuth, request: HttpRequest | None = None
) -> Disconnected:
    """Revoke the association's grant (the association itself stays).

    Never raises for provider trouble: a provider that is down or refuses must not keep
    anyone connected against their will.
    """
    if not (association.extra_data or {}).get("access_token"):
        return Disconnected(None, "no token stored to revoke", NOTHING_STORED)
    try:
        backend = backend_instance(association.provider, request)
    except (SocialAuthBaseException, ProviderNotOffered):
        return Disconnected(
            None, f"{association.provider} is not enabled, so not revoked", NOT_OFFERED
        )
    profile = provider_profile(association.provider)
    try:
        credentials = read_credentials(association.extra_data)
        if profile.refresh_before_revoke:
            credentials = _live(association, credentials)
        revoked = profile.revoke(backend, credentials, association.uid, association.extra_data)
    except ReauthRequired:
        return Disconnected(
            None, f"{provider_title(association.provider)} had already ended the grant",
            GRANT_ENDED,
        )
    except RefreshFailed as error:
        return Disconnected(False, f"the refresh before revoking failed: {error.cause}")
    except SocialAuthBaseException as error:
        return Disconnected(False, error.code)
    except (requests.RequestException, ValueError) as error:
        return Disconnected(False, type(error).__name__)
    except (crypto.DecryptionError, CredentialsUnreadable):
        return Disconnected(False, "credentials could not be decrypted")
    if revoked is None:
        return Disconnected(
            None, f"{provider_title(association.provider)} offers no revocation", NO_REVOCATION
        )
    return Disconnected(True, "") if revoked else Disconnected(False, "the provider refused")


def _live(association: UserSocialAuth, credentials: Credentials) -> Credentials:
    """The credentials with an access token that is not expired: refreshed first (single
    flight) when it is, unless the grant is known to be gone already."""
    if credentials.status == Status.REAUTH_REQUIRED or not credentials.refresh_token:
        return credentials
    return refresh_if_due(association)


def record_revocation(
    association: UserSocialAuth, revoked: bool | None, reason: str, *, actor: Any = None
) -> None:
    """Write the outcome of revoke_at_provider() to the history (nothing when not tried)."""
    if revoked is None:
        return
    record_event(
        association,
        CredentialEvent.Kind.REVOKED,
        actor=actor,
        detail="" if revoked else f"revocation failed ({reason}); disconnected anyway",
    )


def disconnect(
    association: UserSocialAuth,
    *,
    actor: Any = None,
    request: HttpRequest | None = None,
    revoke: bool = True,
    detail: str = "",
) -> Disconnected:
    """Revoke the grant (unless `revoke` is False), record it, then delete the association.

    A provider that is down or refuses never keeps anyone connected against their will: the
    failure is recorded and logged (without the token), and the association goes anyway.
    """
    if revoke:
        outcome = revoke_at_provider(association, request)
        record_revocation(association, outcome.revoked, outcome.reason, actor=actor)
        if outcome.revoked is False:
            logger.warning(
                "Revocation of %s association %s failed (%s); disconnecting anyway",
                association.provider, association.pk, outcome.reason,
            )
    else:
        outcome = Disconnected(None, "not revoked", SKIPPED)
    record_event(association, CredentialEvent.Kind.DISCONNECTED, actor=actor, detail=detail)
    association.delete()
    return outcome
