"""In-app approval (Monzo's Strong Customer Authentication): detect it, and notice it end."""

from __future__ import annotations

from social_django.models import UserSocialAuth

from integrations.providers.registry import backend_instance
from integrations.providers.registry import profile as provider_profile
from integrations.refreshing.single_flight import refresh_if_due
from integrations.signals import connection_approved
from integrations.store.credentials import Status
from integrations.store.writes import patch_association


def record_approval(
    association: UserSocialAuth, access_token: str, *, fallback_name: str = ""
) -> bool | None:
    """Ask the provider whether data access is approved and store the answer.

    Returns True (approved; `connection_approved` fires when it was awaited), False
    (waiting for approval) or None (the provider could not tell right now; nothing changes).
    """
    backend = backend_instance(association.provider)
    profile = provider_profile(association.provider)
    # Most providers grant access with the OAuth consent itself; Monzo also needs an
    # approval in its app (Strong Customer Authentication).
    approved = profile.approval(backend, access_token) if profile.approval else True
    if approved is None:
        return None
    was_waiting = (association.extra_data or {}).get("status") == Status.AWAITING_APPROVAL
    patch: dict[str, object] = {
        "status": Status.ACTIVE if approved else Status.AWAITING_APPROVAL
    }
    if approved and (was_waiting or not association.extra_data.get("display_name")):
        name = profile.account_name(backend, access_token) if profile.account_name else ""
        name = name or fallback_name
        if name:
            patch["display_name"] = name
    patch_association(association, patch)
    if approved and was_waiting:
        connection_approved.send(sender=association.provider, association=association)
    return approved


def check_again(association: UserSocialAuth) -> bool | None:
    """Re-check an association waiting for approval, with a fresh token."""
    credentials = refresh_if_due(association)
    return record_approval(association, credentials.access_token)
