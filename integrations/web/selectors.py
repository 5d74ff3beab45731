"""Read-only queries the pages use."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from social_django.models import UserSocialAuth

from integrations.providers.registry import (
    ProviderInfo,
    available_providers,
    is_offered,
    provider_title,
)
from integrations.providers.registry import profile as provider_profile
from integrations.psa.notices import page_url
from integrations.store import crypto
from integrations.store.credentials import SECRET_FIELDS, Status, expires_at_of
from integrations.store.times import to_datetime

# Shown instead of the stored status when no configured key decrypts the tokens.
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class ConnectionRow:
    """One connected account as the connections page shows it (no secrets)."""

    id: int
    provider: str
    provider_title: str
    uid: str
    display_name: str
    status: str
    expires_at: datetime | None
    expired: bool
    connected_since: datetime
    last_refreshed: datetime | None
    offered: bool


def connections_of(user) -> list[ConnectionRow]:
    """Return the user's associations, newest first, in display form."""
    now = time.time()
    rows = []
    for association in UserSocialAuth.objects.filter(user=user).order_by("-created"):
        data = association.extra_data or {}
        expires_at = expires_at_of(data)
        refreshed_at = data.get("refreshed_at")
        rows.append(
            ConnectionRow(
                id=association.pk,
                provider=association.provider,
                provider_title=provider_title(association.provider),
                uid=association.uid,
                display_name=data.get("display_name") or "",
                status=UNREADABLE if _unreadable(data) else data.get("status") or Status.ACTIVE,
                expires_at=to_datetime(expires_at),
                expired=expires_at is not None and expires_at <= now,
                connected_since=association.created,
                last_refreshed=to_datetime(refreshed_at),
                offered=is_offered(association.provider),
            )
        )
    return rows


def _unreadable(extra_data: dict) -> bool:
    """Return True when a stored token cannot be decrypted with the configured keys."""
    try:
        for field in SECRET_FIELDS:
            if extra_data.get(field):
                crypto.decrypt(extra_data[field])
    except crypto.DecryptionError:
        return True
    return False


@dataclass(frozen=True)
class ConnectOption:
    """One provider in "Connect another account": connected already or not, and for one that
    is, how the person gets a different account of it (the provider's account chooser, or
    signing out there first)."""

    provider: ProviderInfo
    connected: bool
    # The provider asks which account to use when the site asks it to (select_account).
    chooses_account: bool
    # Where to sign out at the provider ("" when unknown), for those that do not ask.
    sign_out_url: str


def connect_options(user) -> list[ConnectOption]:
    """Every provider the site offers, with what connecting another account of it takes."""
    connected = set(UserSocialAuth.objects.filter(user=user).values_list("provider", flat=True))
    options = []
    for provider in available_providers():
        profile = provider_profile(provider.name)
        options.append(
            ConnectOption(
                provider=provider,
                connected=provider.name in connected,
                chooses_account=bool(profile.select_account),
                sign_out_url=page_url(profile.sign_out_url),
            )
        )
    return options
