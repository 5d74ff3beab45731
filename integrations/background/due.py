"""Which associations are due a background refresh, found through CredentialState's indexes.

Two reasons make one due: its access token expires within a window (the status/expires_at
index), or its provider wants a keep-alive and it has not been refreshed for that long (the
last_refreshed_at index; never-refreshed rows count from when they were connected). Rows
flagged reauth_required are never due: only the user can fix them.

Associations awaiting approval in the provider's app (Monzo) are re-checked on every run,
whether due or not (`awaiting_approval`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet

from integrations.models import CredentialState
from integrations.store.credentials import Status
from integrations.store.times import at

# Statuses whose tokens are worth refreshing; listed (not excluded) so the
# (status, expires_at) index can serve the query.
REFRESHABLE = (Status.ACTIVE, Status.AWAITING_APPROVAL)


class Reason:
    EXPIRING = "expiring"
    KEEPALIVE = "keepalive"


@dataclass(frozen=True)
class Due:
    """One association due a refresh, and why."""

    association_id: int
    reason: str


def expiring(within: float, *, now: float, provider: str | None = None) -> QuerySet:
    """CredentialState rows whose access token expires within `within` seconds of `now`."""
    rows = CredentialState.objects.filter(
        status__in=REFRESHABLE, expires_at__lte=at(now + within)
    )
    if provider:
        rows = rows.filter(association__provider=provider)
    return rows.order_by("expires_at")


def idle(provider: str, seconds: float, *, now: float) -> QuerySet:
    """CredentialState rows of `provider` not refreshed (or, never refreshed, not connected)
    within the last `seconds`."""
    cutoff = at(now) - timedelta(seconds=seconds)
    return CredentialState.objects.filter(
        Q(last_refreshed_at__lt=cutoff)
        | Q(last_refreshed_at__isnull=True, association__created__lt=cutoff),
        status__in=REFRESHABLE,
        association__provider=provider,
    ).order_by("last_refreshed_at")


def due_associations(
    *,
    within: float,
    now: float,
    provider: str | None = None,
    keepalive: Mapping[str, float] | None = None,
) -> list[Due]:
    """Return the due associations, most urgent first (expiring before idle), each once."""
    found = {
        pk: Due(pk, Reason.EXPIRING)
        for pk in expiring(within, now=now, provider=provider).values_list(
            "association_id", flat=True
        )
    }
    for name, seconds in (keepalive or {}).items():
        if provider and name != provider:
            continue
        for pk in idle(name, seconds, now=now).values_list("association_id", flat=True):
            found.setdefault(pk, Due(pk, Reason.KEEPALIVE))
    return list(found.values())


def awaiting_approval(*, provider: str | None = None) -> list[int]:
    """Ids of the associations waiting for the user's approval in the provider's app, through
    the (status, expires_at) index."""
    rows = CredentialState.objects.filter(status=Status.AWAITING_APPROVAL)
    if provider:
        rows = rows.filter(association__provider=provider)
    return list(rows.order_by("association_id").values_list("association_id", flat=True))
