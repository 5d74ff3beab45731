"""The one writer of stored credentials: extra_data and its CredentialState index together.

``UserSocialAuth.extra_data`` is the authoritative record of an association's credentials,
status and expiry: it is what Python Social Auth keeps, and every decision about one
association (is it due? may it be used? what does its owner see?) reads it. ``CredentialState``
is an index derived from it, so that questions about many associations (which are due, the
admin's health list, sorting and filtering by expiry) are answered by indexed queries rather
than by decrypting or scanning JSON. Bulk queries select through the index; every decision
re-reads extra_data (the refresh does so under the row lock).

So that the two never disagree, both are written here, by ``merge_extra_data``, in one
transaction. Code that saves an association another way (Python Social Auth's own API, a
shell) is caught up by ``sync_state``, run on every save of an association.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone
from social_django.models import UserSocialAuth

from integrations.models import CredentialState
from integrations.store import statements
from integrations.store.credentials import (
    Credentials,
    credentials_of,
    expires_at_of,
    seal,
    superseding_psa_expiry,
    token_fields_from_response,
)
from integrations.store.times import to_datetime

# extra_data keys mirrored in CredentialState, and the column each goes to.
INDEXED = {"expires_at": "expires_at", "status": "status", "refreshed_at": "last_refreshed_at"}


def merge_extra_data(
    association_id: int, fields: Mapping[str, Any], *, savepoint: bool = True
) -> None:
    """Write `fields` (already sealed) into one association's extra_data, leaving other keys,
    and the matching CredentialState columns, in one transaction.

    Writing ``expires_at`` also removes the expiry keys stock Python Social Auth left, so the
    row's expiry is then the one written, also for the index. A caller whose own transaction
    ends on any failure (the refresh under its row lock) passes ``savepoint=False``.
    """
    fields = superseding_psa_expiry(fields)
    state = _columns({key: fields[key] for key in INDEXED if key in fields})
    with transaction.atomic(savepoint=savepoint):
        indexed = statements.merge_extra_data(
            association_id, fields, modified=timezone.now(), state=state
        )
        if state and not indexed:
            _create_state(association_id, state)


def sync_state(association: UserSocialAuth) -> None:
    """Bring the index in step with an association saved outside merge_extra_data."""
    data = association.extra_data or {}
    values = {key: data.get(key) for key in INDEXED}
    # A row saved by Python Social Auth keeps its expiry its own way: read it as the
    # credentials do, or the background refresh would never find it due.
    values["expires_at"] = expires_at_of(data)
    _write_state(association.pk, values)


def _write_state(association_id: int, values: Mapping[str, Any]) -> None:
    state = _columns(values)
    if state and not statements.update_state(association_id, state):
        _create_state(association_id, state)


def _create_state(association_id: int, state: Mapping[str, Any]) -> None:
    """The index row of an association that has none yet (written before the index
    existed, or by PSA's own save before its first sync)."""
    CredentialState.objects.get_or_create(association_id=association_id, defaults=state)


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """CredentialState's column values for these extra_data values (INDEXED keys)."""
    return {
        INDEXED[key]: to_datetime(value) if key != "status" else (value or "active")
        for key, value in values.items()
    }


def store_token_response(
    association: UserSocialAuth,
    response: Mapping[str, Any],
    *,
    previous_refresh_token: str | None,
    now: float,
    extra: Mapping[str, Any] | None = None,
    savepoint: bool = True,
) -> Credentials:
    """Normalize, encrypt and persist a token response; return the credentials now stored.

    The in-memory `association.extra_data` is updated too, so callers can go on using it.
    """
    fields, credentials = token_response_patch(
        association, response, previous_refresh_token=previous_refresh_token, now=now, extra=extra
    )
    patch_association(association, fields, savepoint=savepoint)
    return credentials


def token_response_patch(
    association: UserSocialAuth,
    response: Mapping[str, Any],
    *,
    previous_refresh_token: str | None,
    now: float,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Credentials]:
    """What storing a token response writes (normalized, sealed: for patch_association or
    patch_many), and the credentials the row then holds."""
    fields = {
        **token_fields_from_response(
            response, previous_refresh_token=previous_refresh_token, now=now
        ),
        **(extra or {}),
    }
    sealed = superseding_psa_expiry(seal(fields))
    return sealed, credentials_of(
        _mirrored(association.extra_data, sealed),
        access_token=fields["access_token"],
        refresh_token=fields["refresh_token"],
    )


def patch_association(
    association: UserSocialAuth, fields: Mapping[str, Any], *, savepoint: bool = True
) -> None:
    """Merge `fields` (already sealed) into the row and mirror it on the instance in memory,
    the way the database applied it (None removes a key)."""
    fields = superseding_psa_expiry(fields)
    merge_extra_data(association.pk, fields, savepoint=savepoint)
    association.extra_data = _mirrored(association.extra_data, fields)


def patch_many(patches: Mapping[UserSocialAuth, Mapping[str, Any]]) -> None:
    """patch_association for many associations, in a statement or two (PostgreSQL), inside
    the caller's transaction: a background sweep writes a whole chunk's refreshed tokens so."""
    groups: dict[tuple[str, ...], dict[UserSocialAuth, dict[str, Any]]] = {}
    for association, fields in patches.items():
        fields = superseding_psa_expiry(fields)
        groups.setdefault(tuple(key for key in INDEXED if key in fields), {})[association] = fields
    modified = timezone.now()
    for keys, group in groups.items():
        state = {
            association.pk: _columns({key: fields[key] for key in keys})
            for association, fields in group.items()
        }
        indexed = statements.merge_many(
            {association.pk: fields for association, fields in group.items()},
            modified=modified,
            state=state if keys else {},
        )
        for association, fields in group.items():
            if keys and association.pk not in indexed:
                _create_state(association.pk, state[association.pk])
            association.extra_data = _mirrored(association.extra_data, fields)


def _mirrored(extra_data: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """`extra_data` with `fields` merged as the database merges them (None removes a key)."""
    merged = {**(extra_data or {}), **fields}
    return {key: value for key, value in merged.items() if value is not None}
