"""A background sweep's chunk (integrations/refreshing/batch.py): one lock, calls together,
one write. Each row ends as a refresh of its own would have: refreshed and recorded once,
left alone when not due or held by someone else, flagged or failed with its tokens kept."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from django.db import DatabaseError, connection, transaction
from social_django.models import UserSocialAuth

from integrations.exceptions import ReauthRequired, RefreshFailed
from integrations.models import CredentialEvent, CredentialState
from integrations.refreshing import batch
from integrations.refreshing.single_flight import Answer, Renewal
from integrations.store import statements
from integrations.store.credentials import read_credentials, seal
from integrations.store.writes import merge_extra_data
from tests.conftest import grant_associations

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_in_order(calls):
    """Make the chunk's calls one after another (the sweep uses a CallPool)."""
    results = []
    for _, work in calls:
        try:
            results.append(work())
        except Exception as error:  # handed back, as the CallPool does
            results.append(error)
    return results


def stored(row: UserSocialAuth):
    return read_credentials(UserSocialAuth.objects.get(pk=row.pk).extra_data)


def events(row: UserSocialAuth) -> list[str]:
    return list(
        CredentialEvent.objects.filter(association_id=row.pk)
        .order_by("id")
        .values_list("kind", flat=True)
    )


def test_a_chunk_refreshes_its_due_rows_once_and_skips_the_others(fast_provider):
    due = grant_associations(fast_provider, 4, expires_at=int(time.time()) - 10)
    fresh = grant_associations(fast_provider, 2, expires_at=int(time.time()) + 3600)
    # A row PSA wrote: its expiry keys must go when the new expires_at is written.
    merge_extra_data(due[0].pk, {"expires": 60, "auth_time": int(time.time()) - 600})
    before = {row.pk: stored(row) for row in due + fresh}

    results = batch.renew_chunk(
        [row.pk for row in due + fresh],
        due=lambda row: read_credentials(row.extra_data).expires_within(60, now=time.time()),
        run=run_in_order,
    )

    assert {pk for pk, result in results.items() if isinstance(result, Renewal)} == {
        row.pk for row in due
    }
    assert all(results[row.pk] is None for row in fresh)
    for row in due:
        now = stored(row)
        assert now.access_token != before[row.pk].access_token
        assert now.refresh_token != before[row.pk].refresh_token
        assert now.expires_at > time.time() + 60
        assert fast_provider.current([now.refresh_token])["current"] == 1
        assert events(row) == [CredentialEvent.Kind.REFRESHED]
        state = CredentialState.objects.get(association_id=row.pk)
        assert int(state.expires_at.timestamp()) == now.expires_at
        assert state.last_refreshed_at is not None
    assert "expires" not in UserSocialAuth.objects.get(pk=due[0].pk).extra_data
    for row in fresh:
        assert stored(row) == before[row.pk]
        assert events(row) == []
    assert fast_provider.stats()["token_calls"]["refresh_token"] == 4


def test_a_row_someone_holds_is_left_to_the_caller(fast_provider):
    rows = grant_associations(fast_provider, 3, expires_at=int(time.time()) - 10)
    held, holding, release = rows[1], threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            statements.lock_association(held.pk)
            holding.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        results = batch.renew_chunk(
            [row.pk for row in rows], due=lambda row: True, run=run_in_order
        )
    finally:
        release.set()
        holder.join()

    assert held.pk not in results
    assert sorted(results) == sorted([rows[0].pk, rows[2].pk])


def test_failures_keep_their_tokens_and_cost_the_others_nothing(fast_provider):
    rows = grant_associations(fast_provider, 4, expires_at=int(time.time()) - 10)
    rejected, dropped, broken, fine = rows
    # A refresh token the provider does not know: invalid_grant.
    merge_extra_data(rejected.pk, seal({"refresh_token": "R1"}))
    before = {row.pk: stored(row) for row in rows}

    def run(calls):
        results = run_in_order([call for call in calls if call[0].pk in (rejected.pk, fine.pk)])
        answers = {rejected.pk: results[0], fine.pk: results[1]}
        answers[dropped.pk] = Answer(error=requests.ConnectionError("connection refused"))
        answers[broken.pk] = RuntimeError("a bug")
        return [answers[row.pk] for row, _ in calls]

    results = batch.renew_chunk([row.pk for row in rows], due=lambda row: True, run=run)

    assert isinstance(results[rejected.pk], ReauthRequired)
    assert isinstance(results[dropped.pk], RefreshFailed)
    assert isinstance(results[broken.pk], RuntimeError)
    assert isinstance(results[fine.pk], Renewal) and results[fine.pk].refreshed
    for row in (rejected, dropped, broken):
        now = stored(row)
        assert (now.access_token, now.refresh_token) == (
            before[row.pk].access_token, before[row.pk].refresh_token
        )
    assert events(rejected) == [CredentialEvent.Kind.REAUTH_REQUIRED]
    assert events(dropped) == [CredentialEvent.Kind.REFRESH_FAILED]
    assert events(broken) == []
    assert events(fine) == [CredentialEvent.Kind.REFRESHED]
    assert stored(rejected).status == "reauth_required"


def test_a_chunk_write_the_database_refuses_is_written_row_by_row(fast_provider, monkeypatch):
    rows = grant_associations(fast_provider, 3, expires_at=int(time.time()) - 10)
    CredentialState.objects.filter(association_id=rows[2].pk).delete()

    def refuse(*args, **kwargs):
        raise DatabaseError("refused")

    monkeypatch.setattr(statements, "merge_many", refuse)
    results = batch.renew_chunk([row.pk for row in rows], due=lambda row: True, run=run_in_order)

    assert all(isinstance(results[row.pk], Renewal) for row in rows)
    for row in rows:
        now = stored(row)
        assert fast_provider.current([now.refresh_token])["current"] == 1
        assert events(row) == [CredentialEvent.Kind.REFRESHED]
    assert CredentialState.objects.filter(association_id=rows[2].pk).exists()


def test_a_missing_index_row_is_created_by_the_chunk_write(fast_provider):
    rows = grant_associations(fast_provider, 2, expires_at=int(time.time()) - 10)
    CredentialState.objects.filter(association_id=rows[0].pk).delete()

    batch.renew_chunk([row.pk for row in rows], due=lambda row: True, run=run_in_order)

    state = CredentialState.objects.get(association_id=rows[0].pk)
    assert int(state.expires_at.timestamp()) == stored(rows[0]).expires_at


def test_a_deferred_call_leaves_its_row_to_the_caller_untouched_and_unlocked(fast_provider):
    rows = grant_associations(fast_provider, 2, expires_at=int(time.time()) - 10)
    deferred, called = rows
    before = stored(deferred)

    def run(calls):
        return [
            batch.DEFERRED if row.pk == deferred.pk else work() for row, work in calls
        ]

    results = batch.renew_chunk([row.pk for row in rows], due=lambda row: True, run=run)

    assert deferred.pk not in results
    assert isinstance(results[called.pk], Renewal)
    assert stored(deferred) == before
    assert events(deferred) == []
    with transaction.atomic(), connection.cursor() as cursor:  # not held any more
        cursor.execute(
            "SELECT id FROM social_auth_usersocialauth WHERE id = %s FOR UPDATE NOWAIT",
            [deferred.pk],
        )


def test_a_paused_provider_defers_the_chunk_and_its_rows_are_refreshed_alone(fast_provider):
    from integrations.background.refresher import Outcome, Refresher
    from integrations.background.throttle import Throttle
    from integrations.providers.transport import Call

    rows = grant_associations(fast_provider, 3, expires_at=int(time.time()) - 10)
    throttle = Throttle(4)
    started = throttle.acquire("demo")
    throttle.release("demo", started, [Call(429, 0.001, retry_after=0.3)])  # a 0.3 s pause
    refresher = Refresher(within=600, throttle=throttle)
    chunk_calls: list[object] = []

    def run(calls):
        answers = run_in_order(calls)
        chunk_calls.extend(answer for answer in answers if answer is not batch.DEFERRED)
        return answers

    began = time.monotonic()
    attempts = refresher.try_chunk([row.pk for row in rows], run)

    assert chunk_calls == []  # none made while the chunk held the locks
    assert [attempts[row.pk].outcome for row in rows] == [Outcome.REFRESHED] * 3
    assert time.monotonic() - began >= 0.25  # alone, each waited out the pause
    assert fast_provider.stats()["token_calls"]["refresh_token"] == 3
