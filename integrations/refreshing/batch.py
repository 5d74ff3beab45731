"""Single flight for a chunk of associations at once: the background sweep's refresh.

A sweep refreshes thousands of tokens; done one by one (integrations/refreshing/single_flight),
each costs five round trips to the database (begin, lock, write, history, commit), which were
most of its CPU, in the sweep and in PostgreSQL. Here one transaction serves a chunk:

1. one statement locks every row of the chunk nobody else holds (SELECT ... FOR UPDATE SKIP
   LOCKED); a row held by someone else (a request refreshing it right now) is left to the
   caller, which renews it alone and so waits for that lock as any caller does;
2. each locked row is decided exactly as `renew` decides, under its lock;
3. the token calls of the due ones are made together by the caller's `run` (on other threads:
   a call touches no database), while this transaction holds their locks, so no one else can
   spend the same refresh tokens; a call `run` chose not to make (DEFERRED: the provider
   asked for a pause) leaves its row to the caller, untouched;
4. one statement writes all the new tokens with their index, one appends their history, and
   the commit releases the chunk; then each row's side effects (signals, failure history) run
   as after a single refresh.

The rows' locks are held for the chunk's calls, not just one: a request for a token of the
chunk waits for them (they are due tokens being refreshed, which it would wait for anyway),
but never for a provider's pause (the background's calls are deferred instead).
PostgreSQL only: SQLite has no row locks, and there refreshes are one at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from django.db import DatabaseError, connections, transaction
from social_django.models import UserSocialAuth

from integrations.models import CredentialEvent
from integrations.refreshing.single_flight import (
    Answer,
    Renewal,
    RowOutcome,
    call,
    decide,
    finish,
    settle,
)
from integrations.store.history import record_event, record_events
from integrations.store.statements import lock_associations
from integrations.store.writes import patch_association, patch_many

logger = logging.getLogger(__name__)

# What a call returns when it chose not to call the provider now (the provider asked for a
# pause): its row is left to the caller, untouched, like a row someone else held.
DEFERRED = Answer()
# Runs token calls (each never raises for provider trouble) and returns their answers in
# order; an exception a call raised anyway is returned in its place.
RunCalls = Callable[[list[tuple[UserSocialAuth, Callable[[], Answer]]]], list[Answer | Exception]]
# The result for one association: its renewal, None when it was not due, or the exception
# `renew` would have raised (ReauthRequired, RefreshFailed, ...).
Result = Renewal | Exception | None


def supported(using: str = "default") -> bool:
    """Whether this database can lock a chunk of rows without waiting (PostgreSQL)."""
    return bool(connections[using].features.has_select_for_update_skip_locked)


def renew_chunk(
    ids: Iterable[int], *, due: Callable[[UserSocialAuth], bool], run: RunCalls
) -> dict[int, Result]:
    """Refresh the associations of `ids` that are `due` (judged under their locks), their
    calls made together by `run`. Return a result per association locked; an id missing from
    it was not locked (held by someone else, or gone): renew it alone."""
    settled: dict[int, RowOutcome | Exception | None] = {}
    with transaction.atomic():
        rows = lock_associations(list(ids))
        to_call = []
        for row in rows:
            if not due(row):
                settled[row.pk] = None
                continue
            try:
                decided = decide(row, lambda current: True)
            except Exception as error:
                settled[row.pk] = error
                continue
            if isinstance(decided, RowOutcome):
                settled[row.pk] = decided
            else:
                to_call.append((row, decided))
        answers = run([(row, partial(call, row, current)) for row, current in to_call])
        for (row, current), answer in zip(to_call, answers, strict=True):
            if answer is DEFERRED:
                settled.pop(row.pk, None)
                continue
            try:
                if isinstance(answer, Exception):
                    raise answer
                settled[row.pk] = settle(row, current, answer)
            except Exception as error:
                settled[row.pk] = error
        _write(
            {
                row: outcome.pending
                for row in rows
                if isinstance(outcome := settled.get(row.pk), RowOutcome) and outcome.pending
            },
            settled,
        )
    results: dict[int, Result] = {}
    for row in rows:
        if row.pk not in settled:  # deferred
            continue
        outcome = settled[row.pk]
        if not isinstance(outcome, RowOutcome):
            results[row.pk] = outcome
            continue
        try:
            results[row.pk] = finish(row, row, outcome)
        except Exception as error:
            results[row.pk] = error
    return results


def _write(
    refreshed: Mapping[UserSocialAuth, dict[str, Any]],
    settled: dict[int, RowOutcome | Exception | None],
) -> None:
    """Store the chunk's new tokens and their history: all at once, or, should that fail
    (a row the database refuses), one by one, so that one row cannot cost the others theirs."""
    if not refreshed:
        return
    try:
        with transaction.atomic():
            patch_many(refreshed)
            record_events(refreshed, CredentialEvent.Kind.REFRESHED)
        return
    except DatabaseError:
        logger.warning("Writing %d refreshed tokens at once failed; one by one", len(refreshed))
    for row, fields in refreshed.items():
        try:
            with transaction.atomic():
                patch_association(row, fields)
                record_event(row, CredentialEvent.Kind.REFRESHED)
        except DatabaseError as error:
            logger.exception("Association %s was refreshed but could not be stored", row.pk)
            settled[row.pk] = error
