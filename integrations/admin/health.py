"""Token health of associations, computed in the database so lists can filter and sort on it.

One expression (`with_health`) decides every association's health from its CredentialState
(the indexed copy of status and expiry) and whether a refresh token is stored, so the admin's
badge, its filter and its sort order always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils.html import format_html
from django.utils.safestring import SafeString

from integrations.admin.masking import state_of
from integrations.store.credentials import Status
from integrations.store.times import now_datetime
from integrations.templatetags.moments import moment_html, relative_phrase


@dataclass(frozen=True)
class Health:
    """One health value: rank (sort order, worst last), key (CSS class, filter value), label."""

    rank: int
    key: str
    label: str
    meaning: str


ACTIVE = Health(0, "active", "Active",
                "the access token is valid beyond the 'expiring soon' window")
EXPIRING_SOON = Health(1, "expiring_soon", "Expiring soon", "the access token expires within "
                       "CUSTODIAN_EXPIRING_SOON seconds")
EXPIRED_REFRESHABLE = Health(2, "expired_refreshable", "Expired but refreshable",
                             "the access token expired; a refresh token is stored, so the next "
                             "use (or 'Refresh now') gets a new one")
AWAITING_APPROVAL = Health(3, "awaiting_approval", "Awaiting approval",
                           "connected, but the user has not yet approved access in the "
                           "provider's app")
REAUTH_REQUIRED = Health(4, "reauth_required", "Reauth required",
                         "the provider rejected the grant, or the token expired with no refresh "
                         "token: only the user reconnecting helps")
UNKNOWN = Health(5, "unknown", "Unknown", "no credential state recorded yet (refresh it once)")

HEALTHS = (ACTIVE, EXPIRING_SOON, EXPIRED_REFRESHABLE, AWAITING_APPROVAL, REAUTH_REQUIRED, UNKNOWN)
BY_RANK = {health.rank: health for health in HEALTHS}
BY_KEY = {health.key: health for health in HEALTHS}


def health_rank(now: datetime | None = None) -> Case:
    """The SQL expression giving an association's health rank (see HEALTHS)."""
    now = now or now_datetime()
    soon = now + timedelta(seconds=settings.CUSTODIAN_EXPIRING_SOON)
    state_status = "credential_state__status"
    expires_at = "credential_state__expires_at"
    has_refresh_token = Q(extra_data__has_key="refresh_token")
    return Case(
        When(credential_state__isnull=True, then=Value(UNKNOWN.rank)),
        When(**{state_status: Status.REAUTH_REQUIRED}, then=Value(REAUTH_REQUIRED.rank)),
        When(Q(**{f"{expires_at}__lte": now}) & ~has_refresh_token,
             then=Value(REAUTH_REQUIRED.rank)),
        When(**{state_status: Status.AWAITING_APPROVAL}, then=Value(AWAITING_APPROVAL.rank)),
        When(**{f"{expires_at}__lte": now}, then=Value(EXPIRED_REFRESHABLE.rank)),
        When(**{f"{expires_at}__lte": soon}, then=Value(EXPIRING_SOON.rank)),
        default=Value(ACTIVE.rank),
        output_field=IntegerField(),
    )


def with_health(queryset: QuerySet, now: datetime | None = None) -> QuerySet:
    """Annotate associations with `health_rank` (an int; `BY_RANK[rank]` is the Health)."""
    return queryset.annotate(health_rank=health_rank(now))


def badge(association: Any) -> SafeString:
    """The association's health as a coloured badge, its meaning (and the provider's reason,
    if any) as the tooltip. The association must come through `with_health`."""
    rank = getattr(association, "health_rank", None)
    item = BY_RANK.get(rank, UNKNOWN) if isinstance(rank, int) else UNKNOWN
    reason = (association.extra_data or {}).get("status_reason") or ""
    title = item.meaning + (f" (reason: {reason})" if reason else "")
    return format_html(
        '<span class="custodian-badge custodian-{}" title="{}">{}</span>',
        item.key,
        title,
        item.label,
    )


def expiry_cell(association: Any, *, compact: bool = True, missing: str = "—") -> str:
    """When the association's access token expires, as the admin shows it in a list or on a
    page: from its CredentialState (`missing` when it has none)."""
    state = state_of(association)
    if state is None:
        return missing
    return moment_html(
        state.expires_at, past_prefix="expired ", compact=compact, empty="no expiry"
    )


def expires_phrase(expires_at: datetime | None, now: datetime | None = None) -> str:
    """Say when a token expires, for people: "in 42 minutes", "expired 3 hours ago".

    The phrase rules are the pages' (integrations/templatetags/moments.py), so a message
    and the list beside it say the same.
    """
    if expires_at is None:
        return "no expiry"
    return relative_phrase(expires_at, now or now_datetime(), past_prefix="expired ")
