"""What `manage.py refresh_tokens --dry-run -v 2` says about each due association: whose it
is, at which provider under which uid, when its token expires (UTC), and why it is due.

One line each, for an operator deciding whether a run would do what they expect; the facts
come from the association itself (extra_data, the owner of expiry and last refresh), and no
token or other secret is ever part of a line.
"""

from __future__ import annotations

from collections.abc import Mapping

from social_django.models import UserSocialAuth

from integrations.background.due import Due, Reason
from integrations.store.credentials import expires_at_of
from integrations.store.times import at


def due_lines(due: list[Due], *, now: float, keepalive: Mapping[str, float]) -> list[str]:
    """One line per due association, in the order given (most urgent first)."""
    rows = UserSocialAuth.objects.select_related("user").in_bulk(
        [item.association_id for item in due]
    )
    lines = []
    for item in due:
        association = rows.get(item.association_id)
        if association is None:  # disconnected since it was selected
            lines.append(f"association {item.association_id}: gone (disconnected meanwhile)")
            continue
        data = association.extra_data or {}
        expires_at = expires_at_of(data)
        user = association.user
        lines.append(
            f"association {association.pk}: user {user.get_username()} (id {user.pk}), "
            f"provider {association.provider}, uid {association.uid}, "
            f"expires {utc(expires_at) if expires_at is not None else 'never'}, "
            f"due: {_why(item, association, expires_at, now=now, keepalive=keepalive)}"
        )
    return lines


def _why(
    item: Due,
    association: UserSocialAuth,
    expires_at: float | None,
    *,
    now: float,
    keepalive: Mapping[str, float],
) -> str:
    if item.reason == Reason.EXPIRING and expires_at is not None:
        left = expires_at - now
        if left > 0:
            return f"expiring (in {span(left)})"
        return f"expiring (expired {span(-left)} ago)"
    if item.reason == Reason.KEEPALIVE:
        period = keepalive.get(association.provider)
        every = f"; every {span(period)}" if period else ""
        refreshed = (association.extra_data or {}).get("refreshed_at")
        if refreshed:
            since = float(refreshed)
            return f"keep-alive (last refreshed {utc(since)}, {span(now - since)} ago{every})"
        since = association.created.timestamp()
        return (
            f"keep-alive (never refreshed; connected {utc(since)}, {span(now - since)} ago"
            f"{every})"
        )
    return item.reason


def utc(epoch: float) -> str:
    """E.g. "2025-06-01 12:00:00 UTC"."""
    return f"{at(epoch):%Y-%m-%d %H:%M:%S} UTC"


def span(seconds: float) -> str:
    """A length of time in its largest whole unit, rounded down: "45s", "4m", "3h", "2d"."""
    seconds = max(0, int(seconds))
    for unit, size, below in (("s", 1, 120), ("m", 60, 2 * 3600), ("h", 3600, 2 * 86400)):
        if seconds < below:
            return f"{seconds // size}{unit}"
    return f"{seconds // 86400}d"
