"""Record the credential history (CredentialEvent); callers never pass secrets."""

from __future__ import annotations

from typing import Any

from social_django.models import UserSocialAuth

from integrations.models import CredentialEvent


def record_event(
    association: UserSocialAuth, kind: str, *, actor: Any = None, detail: str = ""
) -> CredentialEvent:
    """Append one event to the association's history."""
    return CredentialEvent.objects.create(
        association_id=association.pk,
        user_id=association.user_id,
        provider=association.provider,
        uid=association.uid,
        kind=kind,
        actor=actor if getattr(actor, "pk", None) else None,
        detail=detail[:500],
    )
