"""The token store: one normalized, encrypted shape in ``UserSocialAuth.extra_data``.

Every provider's credentials are stored as::

    access_token   encrypted
    refresh_token  encrypted; the previous one is kept when a response carries none
    token_type     "Bearer"
    scope          space-separated, "" when the provider says nothing
    expires_at     absolute UTC epoch seconds (never only a relative expires_in), or absent
    status         "active" | "reauth_required" | "awaiting_approval"

Other keys (user_id, auth_time, refreshed_at, ...) sit beside them untouched.

Rows written by stock Python Social Auth before the site adopted Custodian hold plaintext
tokens and PSA's expiry keys (``expires``, ``expires_in``, ``expires_on``, with ``auth_time``)
instead of ``expires_at``. They are read as they are (``expires_at_of`` gives their expiry by
PSA's own rules) until ``manage.py adopt_credentials`` or the next login or refresh rewrites
them; a write of ``expires_at`` removes PSA's keys, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Shared with the backends, which import nothing from the app; re-exported for the app.
from backends.credentials import ABSOLUTE_AFTER
from backends.credentials import Credentials as Credentials
from backends.credentials import fingerprint as fingerprint
from integrations.security import secrets_registry
from integrations.store import crypto

SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
# Where stock Python Social Auth keeps an expiry; Custodian keeps only expires_at.
PSA_EXPIRY_KEYS = ("expires_in", "expires", "expires_on")
# Keys of a raw provider response that must never reach extra_data unnormalized.
RAW_TOKEN_KEYS = (*SECRET_FIELDS, *PSA_EXPIRY_KEYS)


class Status:
    """Values of extra_data["status"]."""

    ACTIVE = "active"
    REAUTH_REQUIRED = "reauth_required"
    AWAITING_APPROVAL = "awaiting_approval"


def read_credentials(extra_data: Mapping[str, Any]) -> Credentials:
    """Return the decrypted credentials held in `extra_data`."""
    refresh_token = extra_data.get("refresh_token")
    return credentials_of(
        extra_data,
        access_token=crypto.decrypt(extra_data.get("access_token") or ""),
        refresh_token=crypto.decrypt(refresh_token) if refresh_token else None,
    )


def credentials_of(
    extra_data: Mapping[str, Any], *, access_token: str, refresh_token: str | None
) -> Credentials:
    """The credentials `extra_data` holds, with its tokens given in plaintext (just written,
    so there is no need to decrypt them again)."""
    return Credentials(
        access_token=access_token,
        refresh_token=refresh_token,
        token_type=extra_data.get("token_type") or "Bearer",
        scope=extra_data.get("scope") or "",
        expires_at=expires_at_of(extra_data),
        status=extra_data.get("status") or Status.ACTIVE,
    )


def expires_at_of(extra_data: Mapping[str, Any]) -> int | None:
    """Return when the stored access token expires (epoch seconds), or None if unknown.

    The one reading of a stored expiry, shared by the credentials and their index, so that a
    row PSA wrote is due at the same moment for a request and for the background refresh.
    Custodian's ``expires_at`` wins; without it, PSA's keys are read the way social-core reads
    them (``UserMixin.expiration_timedelta``): ``expires_on`` is absolute, ``expires_in`` is
    relative to ``auth_time``, ``expires`` is absolute past ABSOLUTE_AFTER and relative below.
    PSA counts a relative expiry without ``auth_time`` from *now*, whenever asked: a token
    that never comes due, which is what None says here. A value that is no number is unknown
    too (PSA raises; a stored row must stay readable).
    """
    if extra_data.get("expires_at") is not None:
        return _epoch(extra_data["expires_at"])
    if extra_data.get("expires_on") is not None:
        return _epoch(extra_data["expires_on"])
    if extra_data.get("expires_in") is not None:
        return _after_auth(extra_data, _epoch(extra_data["expires_in"]))
    expires = _epoch(extra_data.get("expires"))
    if expires is None or expires > ABSOLUTE_AFTER:
        return expires
    return _after_auth(extra_data, expires)


def _after_auth(extra_data: Mapping[str, Any], seconds: int | None) -> int | None:
    auth_time = _epoch(extra_data.get("auth_time"))
    if seconds is None or not auth_time:  # PSA ignores a missing or zero auth_time
        return None
    return auth_time + seconds


def _epoch(value: Any) -> int | None:
    """`value` as whole seconds, or None when it is missing or no number."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def superseding_psa_expiry(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return `fields`, plus the removal of PSA's expiry keys when they write ``expires_at``.

    A stale ``expires`` beside a new ``expires_at`` would be harmless to expires_at_of (which
    prefers expires_at) but wrong to anyone else reading the row, so the keys go in the same
    write. Removing a key that is not there changes nothing.
    """
    if "expires_at" not in fields:
        return dict(fields)
    return {**dict.fromkeys(PSA_EXPIRY_KEYS), **fields}


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
    # The refresh token's own expiry, when the backend read one (a declaration's
    # refresh_token_expires_key); a response without a new refresh token leaves it as it was.
    if isinstance(response.get("refresh_token_expires_at"), int) and response.get("refresh_token"):
        fields["refresh_token_expires_at"] = response["refresh_token_expires_at"]
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
            return seconds if seconds > ABSOLUTE_AFTER else int(now) + seconds
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
