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

import hashlib
import json
from datetime import datetime
from datetime import timezone as dt_timezone
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import NotSupportedError
from django.db.models import F, Func, JSONField
from django.utils import timezone
from social_django.models import UserSocialAuth

from integrations.store import crypto

from integrations.security import secrets_registry
from integrations.models import CredentialState

SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
# Keys of a raw provider response that must never reach extra_data unnormalized.
RAW_TOKEN_KEYS = (*SECRET_FIELDS, "expires_in", "expires", "expires_on")


class Status:
    """Values of extra_data["status"]."""

    ACTIVE = "active"
    REAUTH_REQUIRED = "reauth_required"
    AWAITING_APPROVAL = "awaiting_approval"


@dataclass(frozen=True, repr=False)
class Credentials:
    """Decrypted credentials of one association. Its repr never shows a token."""

    access_token: str
    refresh_token: str | None
    token_type: str
    scope: str
    expires_at: int | None
    status: str

    def __repr__(self) -> str:
        return (
            f"Credentials(token_type={self.token_type!r}, scope={self.scope!r}, "
            f"expires_at={self.expires_at!r}, status={self.status!r}, "
            f"access_token=<{fingerprint(self.access_token)}>)"
        )

    __str__ = __repr__

    def expires_within(self, seconds: float, *, now: float) -> bool:
        """Return True when the access token is expired or expires within `seconds`."""
        return self.expires_at is not None and self.expires_at - now <= seconds


def fingerprint(token: str | None) -> str:
    """Return the last 6 hex digits of the token's SHA-256: enough to compare, useless to use."""
    if not token:
        return "none"
    return hashlib.sha256(token.encode()).hexdigest()[-6:]


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


class JSONMerge(Func):
    """Merge a patch into a JSON column inside the database (RFC 7396: None removes a key).

    Writing only the patched keys means a concurrent writer of other keys is never
    overwritten by a read-modify-write of the whole document.
    """

    output_field = JSONField()

    def __init__(self, field: str, patch: Mapping[str, Any]) -> None:
        self.patch = dict(patch)
        super().__init__(F(field))

    def as_sql(self, compiler, connection, **extra_context):  # type: ignore[override]
        lhs, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            removed = [key for key, value in self.patch.items() if value is None]
            kept = {key: value for key, value in self.patch.items() if value is not None}
            sql = f"((COALESCE({lhs}, '{{}}'::jsonb) - %s::text[]) || %s::jsonb)"
            return sql, [*params, removed, json.dumps(kept)]
        if connection.vendor == "sqlite":
            return f"json_patch(COALESCE({lhs}, '{{}}'), %s)", [*params, json.dumps(self.patch)]
        raise NotSupportedError(f"JSONMerge is not implemented for {connection.vendor}")


def merge_extra_data(association_id: int, fields: Mapping[str, Any]) -> None:
    """Write `fields` (already sealed) into one association's extra_data, leaving other keys,
    and keep the indexed CredentialState in step."""
    UserSocialAuth.objects.filter(pk=association_id).update(
        extra_data=JSONMerge("extra_data", fields), modified=timezone.now()
    )
    state: dict[str, Any] = {}
    if "expires_at" in fields:
        state["expires_at"] = _as_datetime(fields["expires_at"])
    if "status" in fields:
        state["status"] = fields["status"]
    if "refreshed_at" in fields:
        state["last_refreshed_at"] = _as_datetime(fields["refreshed_at"])
    if state and not CredentialState.objects.filter(association_id=association_id).update(**state):
        CredentialState.objects.get_or_create(association_id=association_id, defaults=state)


def _as_datetime(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=dt_timezone.utc) if epoch is not None else None


def store_token_response(
    association: UserSocialAuth,
    response: Mapping[str, Any],
    *,
    previous_refresh_token: str | None,
    now: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Normalize, encrypt and persist a token response; return the sealed fields written.

    The in-memory `association.extra_data` is updated too, so callers can go on using it.
    """
    fields = seal(
        {
            **token_fields_from_response(
                response, previous_refresh_token=previous_refresh_token, now=now
            ),
            **(extra or {}),
        }
    )
    patch_association(association, fields)
    return fields


def patch_association(association: UserSocialAuth, fields: Mapping[str, Any]) -> None:
    """Merge `fields` (already sealed) into the row and mirror it on the instance in memory,
    the way the database applied it (None removes a key)."""
    merge_extra_data(association.pk, fields)
    merged = {**(association.extra_data or {}), **fields}
    association.extra_data = {key: value for key, value in merged.items() if value is not None}
