"""The token store: one normalized, encrypted shape in ``UserSocialAuth.extra_data``.

Every provider's credentials are stored as::

    access_token   encrypted
    refresh_token  encrypted; the previous one is kept when a response carries none
    token_type     "Bearer"
    scope          space-separated, "" when the provider says nothing
    expires_at     absolute UTC epoch seconds (never only a relative expires_in), or absent
    status         "active" | "reauth_required" | "awaiting_approval"

Other keys (user_id, auth_time, refreshed_at, ...) sit beside them untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Shared with the backends, which import nothing from the app; re-exported for the app.
from backends.credentials import Credentials as Credentials
from backends.credentials import fingerprint as fingerprint
from integrations.security import secrets_registry
from integrations.store import crypto

SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
# Keys of a raw provider response that must never reach extra_data unnormalized.
RAW_TOKEN_KEYS = (*SECRET_FIELDS, "expires_in", "expires", "expires_on")


class Status:
    """Values of extra_data["status"]."""

    ACTIVE = "active"
    REAUTH_REQUIRED = "reauth_required"
    AWAITING_APPROVAL = "awaiting_approval"


def read_credentials(extra_data: Mapping[str, Any]) -> Credentials:
    """Return the decrypted credentials held in `extra_data`."""
    refresh_token = extra_data.get("refresh_token")
    expires_at = extra_data.get("expires_at")
    return Credentials(
        access_token=crypto.decrypt(extra_data.get("access_token") or ""),
        refresh_token=crypto.decrypt(refresh_token) if refresh_token else None,
        token_type=extra_data.get("token_type") or "Bearer",
        scope=extra_data.get("scope") or "",
        expires_at=int(expires_at) if expires_at is not None else None,
        status=extra_data.get("status") or Status.ACTIVE,
    )


def token_fields_from_response(
    response: Mapping[str, Any], *, previous_refresh_token: str | None, now: float
) -> dict[str, Any]:
    """Return the normalized, plaintext token fields of a token-endpoint response.

    RFC 6749 §6: a response without a refresh token means "keep using the one you have".
    """
    # Every token response of a login or a refresh passes here: from now on, logs and error
    # pages mask these tokens by value.
    secrets_registry.register_token_response(response)
    scope = response.get("scope") or ""
    if isinstance(scope, list):
        scope = " ".join(scope)
    fields: dict[str, Any] = {
        "access_token": response["access_token"],
        "refresh_token": response.get("refresh_token") or previous_refresh_token,
        "token_type": response.get("token_type") or "Bearer",
        "scope": str(scope),
        "expires_at": _expires_at(response, now),
    }
    if response.get("id_token"):
        fields["id_token"] = response["id_token"]
    return fields


def _expires_at(response: Mapping[str, Any], now: float) -> int | None:
    for key in ("expires_in", "expires"):
        value = response.get(key)
        if value not in (None, ""):
            try:
                seconds = int(float(value))
            except (TypeError, ValueError):
                return None
            # Some providers send an absolute time under "expires"; anything past two years
            # from the epoch cannot be a lifetime.
            return seconds if seconds > 63_072_000 else int(now) + seconds
    if response.get("expires_at") not in (None, ""):
        try:
            return int(float(response["expires_at"]))
        except (TypeError, ValueError):
            return None
    return None


def seal(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return `fields` with secret values encrypted; None stays None (meaning "remove")."""
    return {
        key: crypto.encrypt(value) if key in SECRET_FIELDS and value is not None else value
        for key, value in fields.items()
    }
