"""Adoption: rows stock Python Social Auth wrote, rewritten in Custodian's shape.

A site that used PSA before Custodian holds rows as social-core's ``load_extra_data`` left
them: plaintext tokens, and the expiry as ``expires`` (seconds after ``auth_time``, or an
epoch), ``expires_in`` or ``expires_on``. Custodian reads them as they are (plaintext passes
through decryption; ``expires_at_of`` reads PSA's expiry), so nothing breaks on the day of the
switch; adopting them only stops keeping their tokens in plaintext and moves their expiry to
``expires_at``, which is what a login through Custodian would have stored.

Each row is adopted on its own: locked, re-read, rewritten through the one writer
(``merge_extra_data``) and given its "adopted" history entry, in one transaction. A run that
stops half-way has adopted a prefix of the rows in pk order, and a row once adopted is in
Custodian's shape, which is what the next run skips: running again finishes the job.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from social_django.models import UserSocialAuth

from integrations.models import CredentialEvent
from integrations.store import crypto
from integrations.store.credentials import (
    PSA_EXPIRY_KEYS,
    SECRET_FIELDS,
    Status,
    expires_at_of,
    seal,
    token_fields_from_response,
)
from integrations.store.history import record_event
from integrations.store.writes import merge_extra_data

logger = logging.getLogger(__name__)


class Verdict(enum.Enum):
    """What adoption makes of one row."""

    ADOPT = "adopt"  # plaintext tokens or PSA's expiry keys: rewritten
    CURRENT = "current"  # already in Custodian's shape: left alone
    UNREADABLE = "unreadable"  # encrypted under no configured key: left alone, reported
    TOKENLESS = "tokenless"  # no OAuth 2.0 access token (OAuth 1, OpenID): not Custodian's


@dataclass(frozen=True)
class Outcome:
    """One row's result; `error` names the exception when adopting it failed (no message: a
    database error may quote the values it was given)."""

    association_id: int
    provider: str
    uid: str
    verdict: Verdict | None
    error: str = ""


def verdict(extra_data: Any) -> Verdict:
    """Classify a row's extra_data (decrypts its tokens to tell unreadable ones apart)."""
    data = extra_data if isinstance(extra_data, dict) else {}
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        return Verdict.TOKENLESS
    try:
        _plaintexts(data)
    except crypto.DecryptionError:
        return Verdict.UNREADABLE
    in_shape = not any(key in data for key in PSA_EXPIRY_KEYS) and all(
        data[name].startswith(crypto.PREFIX) for name in SECRET_FIELDS if data.get(name)
    )
    return Verdict.CURRENT if in_shape else Verdict.ADOPT


def adopted_fields(extra_data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the sealed patch that puts a PSA row in Custodian's shape.

    The stored values go through the same normalization as a login's token response. Its
    expiry is the row's own (``expires_at_of``: from ``auth_time``, not from now), handed over
    as an absolute ``expires_at``, so `now` plays no part; PSA's expiry keys are removed.
    Keys Custodian does not own (user_id, auth_time, instance_url, ...) are not in the patch,
    so they stay as they are; ``status`` is "active" unless the row has one.
    """
    tokens = _plaintexts(extra_data)
    response: dict[str, Any] = {
        **tokens,
        "token_type": extra_data.get("token_type"),
        "scope": extra_data.get("scope"),
        "expires_at": expires_at_of(extra_data),
    }
    fields = token_fields_from_response(response, previous_refresh_token=None, now=time.time())
    return seal(
        {
            **fields,
            "status": extra_data.get("status") or Status.ACTIVE,
            **dict.fromkeys(PSA_EXPIRY_KEYS),
        }
    )


def adopt(association_id: int) -> Verdict | None:
    """Adopt one row if it still needs it, under its row lock; None when it is gone."""
    with transaction.atomic():
        row = UserSocialAuth.objects.select_for_update().filter(pk=association_id).first()
        if row is None:
            return None
        found = verdict(row.extra_data)
        if found is Verdict.ADOPT:
            merge_extra_data(row.pk, adopted_fields(row.extra_data))
            record_event(row, CredentialEvent.Kind.ADOPTED)
    return found


def adopt_all(
    *, provider: str | None = None, batch_size: int = 500, dry_run: bool = False
) -> Iterator[Outcome]:
    """Adopt every row that needs it (of `provider`), in pk order; yield each row's outcome.

    Rows are read `batch_size` at a time without locks and classified; only those that need
    adopting are locked and re-read, one transaction each. With `dry_run`, nothing is written
    and the classification is the outcome.
    """
    for association_id, name, uid, extra_data in scan(provider=provider, batch_size=batch_size):
        try:
            found: Verdict | None = verdict(extra_data)
            if found is Verdict.ADOPT and not dry_run:
                found = adopt(association_id)
        except Exception as error:
            logger.exception("Adopting association %s failed", association_id)
            yield Outcome(association_id, name, uid, None, type(error).__name__)
            continue
        if found is not None:
            yield Outcome(association_id, name, uid, found)


def scan(*, provider: str | None, batch_size: int) -> Iterator[tuple[int, str, str, Any]]:
    """Yield (pk, provider, uid, extra_data) of every association in pk order, a batch per
    query (keyset pagination: rows added or deleted meanwhile shift nothing)."""
    rows = UserSocialAuth.objects.order_by("pk")
    if provider:
        rows = rows.filter(provider=provider)
    last = 0
    while True:
        batch = list(
            rows.filter(pk__gt=last).values_list("pk", "provider", "uid", "extra_data")[
                :batch_size
            ]
        )
        yield from batch
        if len(batch) < batch_size:
            return
        last = batch[-1][0]


def count(*, provider: str | None = None) -> int:
    """How many associations a run looks at."""
    rows = UserSocialAuth.objects.all()
    return rows.filter(provider=provider).count() if provider else rows.count()


def _plaintexts(extra_data: Mapping[str, Any]) -> dict[str, str]:
    """The row's tokens in plaintext (raises DecryptionError when a key is missing)."""
    return {
        name: crypto.decrypt(extra_data[name]) for name in SECRET_FIELDS if extra_data.get(name)
    }
