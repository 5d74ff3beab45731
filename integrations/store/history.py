"""Record the credential history (CredentialEvent); callers never pass secrets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from social_django.models import UserSocialAuth

from integrations.models import CredentialEvent
from integrations.store import statements


def record_event(
    association: UserSocialAuth, kind: str, *, actor: Any = None, detail: str = ""
) -> CredentialEvent:
    """Append one event to the association's history (one INSERT: a refresh writes one
    per token, see integrations/store/statements.py)."""
    event = _event(association, kind, actor=actor, detail=detail, created=timezone.now())
    event.pk = statements.insert_event(event)
    event._state.adding = False
    return event


def record_events(associations: Iterable[UserSocialAuth], kind: str) -> None:
    """Append the same kind of event, without an actor, to each association's history, in
    one statement (a background sweep's refreshed chunk)."""
    created = timezone.now()
    statements.insert_events([_event(each, kind, created=created) for each in associations])


def _event(
    association: UserSocialAuth, kind: str, *, created: Any, actor: Any = None, detail: str = ""
) -> CredentialEvent:
    return CredentialEvent(
        association_id=association.pk,
        user_id=association.user_id,
        provider=association.provider,
        uid=association.uid,
        kind=kind,
        actor=actor if getattr(actor, "pk", None) else None,
        detail=detail[:500],
        created=created,
    )
