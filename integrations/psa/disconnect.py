"""End a grant at the provider and record it; shared by user disconnect and the admin."""

from __future__ import annotations

from typing import Any

import requests
from django.http import HttpRequest
from social_core.exceptions import SocialAuthBaseException
from social_django.models import UserSocialAuth

from integrations.store import crypto
from integrations.store.history import record_event
from integrations.exceptions import ProviderNotOffered
from integrations.models import CredentialEvent
from integrations.providers.registry import backend_instance, provider_title
from integrations.store.credentials import read_credentials


def revoke_at_provider(
    association: UserSocialAuth, request: HttpRequest | None = None
) -> tuple[bool | None, str]:
    """Revoke the association's grant. Return (True, ""), (False, why) or (None, why not tried).

    Never raises for provider trouble: a provider that is down or refuses must not keep
    anyone connected against their will.
    """
    if not (association.extra_data or {}).get("access_token"):
        return None, "no token stored to revoke"
    try:
        backend = backend_instance(association.provider, request)
    except (SocialAuthBaseException, ProviderNotOffered):
        return None, f"{association.provider} is not enabled, so not revoked"
    try:
        revoked = backend.revoke_credentials(read_credentials(association.extra_data), association.uid)
    except SocialAuthBaseException as error:
        return False, error.code
    except requests.RequestException as error:
        return False, type(error).__name__
    except crypto.DecryptionError:
        return False, "credentials could not be decrypted"
    if revoked is None:
        return None, f"{provider_title(association.provider)} offers no revocation"
    return (True, "") if revoked else (False, "the provider refused")


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


def disconnect_without_revocation(
    association: UserSocialAuth, *, actor: Any = None, detail: str = ""
) -> None:
    """Record the disconnect in the history and delete the association, revoking nothing.

    For associations whose provider is no longer offered: there is no backend to revoke
    with, and the user must still be able to remove their stored credentials.
    """
    record_event(association, CredentialEvent.Kind.DISCONNECTED, actor=actor, detail=detail)
    association.delete()
