"""`manage.py refresh_tokens`: due selection through the index, single flight beside web
traffic and a second run, keep-alive, rate limits, retries with backoff, the backfill migration.

All against the loopback provider (real token rotation with reuse detection, so a double
refresh would show as a rejected call, not only as a count). Nothing sleeps to let time pass:
expiry is written into the rows, and backoff and rate limits get an injected clock and sleep.
"""

from __future__ import annotations

import io
import re
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations import RunPython
from social_django.models import UserSocialAuth

from integrations import get_session
from integrations.background.backoff import RetryPolicy
from integrations.background.due import Reason, due_associations, expiring
from integrations.background.pool import refresh_all
from integrations.background.rate_limit import RateLimiter
from integrations.background.refresher import Outcome, Refresher
from integrations.management.commands.refresh_tokens import duration
from integrations.models import CredentialEvent, CredentialState
from integrations.store.credentials import read_credentials
from integrations.store.writes import merge_extra_data

pytestmark = pytest.mark.django_db(transaction=True)

SUMMARY = re.compile(
    r"(\d+) due \((.*?)\): refreshed (\d+), skipped (\d+), reauth required (\d+), "
    r"failed (\d+), errors (\d+)"
)


def run(*args: str, stdout: io.StringIO | None = None) -> str:
    out = stdout or io.StringIO()
    call_command("refresh_tokens", *args, stdout=out)
    return out.getvalue()


def summary(output: str) -> dict[str, int | str]:
    match = SUMMARY.search(output)
    assert match, output
    due, why, *counts = match.groups()
    names = ("refreshed", "skipped", "reauth", "failed", "errors")
    return {"due": int(due), "why": why, **dict(zip(names, map(int, counts), strict=False))}


def refreshed_events(association: UserSocialAuth) -> int:
    return CredentialEvent.objects.filter(
        association=association, kind=CredentialEvent.Kind.REFRESHED
    ).count()


def ago(seconds: float) -> int:
    return int(time.time() - seconds)


def test_refreshes_the_due_tokens_only_and_prints_a_plain_summary(granted, provider):
    expired = granted(3, expires_at=ago(10))
    soon = granted(2, expires_at=ago(-300))  # in 5 minutes: inside the 10-minute window
    later = granted(2)  # an hour left
    flagged = granted(1, expires_at=ago(10))[0]
    merge_extra_data(flagged.pk, {"status": "reauth_required"})
    untouched = {row.pk: row.extra_data for row in [*later, flagged]}
    untouched[flagged.pk] = UserSocialAuth.objects.get(pk=flagged.pk).extra_data

    output = run("--concurrency=4")

    assert summary(output) == {
        "due": 5,
        "why": "5 expiring",
        "refreshed": 5,
        "skipped": 0,
        "reauth": 0,
        "failed": 0,
        "errors": 0,
    }
    assert "\r" not in output and "Refreshing" not in output  # no progress bar off a terminal
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 5
    assert stats["refresh_rejected"] == 0
    for association in [*expired, *soon]:
        association.refresh_from_db()
        credentials = read_credentials(association.extra_data)
        assert credentials.expires_at > time.time() + 3000
        state = CredentialState.objects.get(association=association)
        assert state.expires_at.timestamp() == credentials.expires_at
        assert state.last_refreshed_at is not None
        assert refreshed_events(association) == 1
    for pk, extra_data in untouched.items():
        assert UserSocialAuth.objects.get(pk=pk).extra_data == extra_data
    assert not CredentialEvent.objects.filter(association_id=flagged.pk).exists()


def test_within_bounds_the_window(granted, provider):
    association = granted(1, expires_at=ago(-20 * 60))[0]

    assert summary(run("--within=10m"))["due"] == 0
    assert provider.stats()["token_calls"]["refresh_token"] == 0
    assert summary(run("--within=30m"))["refreshed"] == 1
    assert refreshed_events(association) == 1


def test_dry_run_lists_what_is_due_and_calls_nothing(granted, provider):
    rows = granted(2, expires_at=ago(10))
    before = {row.pk: UserSocialAuth.objects.get(pk=row.pk).extra_data for row in rows}

    output = run("--dry-run", "--verbosity=2")

    assert "Dry run: 2 due (2 expiring); nothing refreshed." in output
    for row in rows:
        assert f"association {row.pk}: user {row.user.username} " in output
        assert re.search(rf"association {row.pk}: .*, due: expiring \(expired \d+s ago\)", output)
        assert UserSocialAuth.objects.get(pk=row.pk).extra_data == before[row.pk]
    assert provider.stats()["token_calls"]["refresh_token"] == 0


def test_provider_option_limits_the_run_to_one_provider(granted, provider):
    demo = granted(2, expires_at=ago(10))
    monzo = granted(1, backend="monzo", expires_at=ago(10))[0]

    assert summary(run("--provider=monzo"))["refreshed"] == 1

    assert provider.stats()["token_calls"]["refresh_token"] == 1
    assert refreshed_events(monzo) == 1
    assert all(refreshed_events(row) == 0 for row in demo)


def test_two_runs_and_web_traffic_at_once_refresh_each_token_exactly_once(granted, provider):
    rows = granted(10, expires_at=ago(10))
    provider.latency(60)  # slow token calls: the runs and the web requests pile up on them
    barrier = threading.Barrier(2 + 3)
    outputs: list[str] = []
    statuses: list[object] = []

    def command() -> None:
        try:
            barrier.wait(timeout=30)
            outputs.append(run("--concurrency=4"))
        finally:
            connection.close()

    def web(user) -> None:
        try:
            barrier.wait(timeout=30)
            statuses.append(get_session(user, "demo").get("/ping/whoami").status_code)
        except Exception as error:  # shown by the assertion below
            statuses.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=command) for _ in range(2)]
    threads += [threading.Thread(target=web, args=(row.user,)) for row in rows[:3]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert statuses == [200, 200, 200]
    counts = [summary(output) for output in outputs]
    assert len(counts) == 2 and all(count["errors"] == count["failed"] == 0 for count in counts)
    # The web requests refreshed some; the two runs the rest, each token once in all.
    assert 7 <= counts[0]["refreshed"] + counts[1]["refreshed"] <= 10
    stats = provider.stats()
    assert stats["token_calls"]["refresh_token"] == 10
    assert stats["refresh_rejected"] == 0
    for row in rows:
        assert refreshed_events(row) == 1
        row.refresh_from_db()
        assert row.extra_data["status"] == "active"


def test_keepalive_refreshes_idle_grants_only(granted, provider, settings):
    settings.CUSTODIAN_KEEPALIVE = {"demo": 50 * 86400}
    stale, recent, never_old, never_new = granted(4)  # none expiring within the window
    merge_extra_data(stale.pk, {"refreshed_at": ago(51 * 86400)})
    merge_extra_data(recent.pk, {"refreshed_at": ago(86400)})
    UserSocialAuth.objects.filter(pk=never_old.pk).update(
        created=datetime.now(UTC) - timedelta(days=60)
    )

    assert summary(run("--concurrency=2"))["why"] == "2 keepalive"

    assert provider.stats()["token_calls"]["refresh_token"] == 2
    assert [refreshed_events(row) for row in (stale, recent, never_old, never_new)] == [1, 0, 1, 0]
    assert summary(run())["due"] == 0  # now refreshed, no longer idle
    settings.CUSTODIAN_KEEPALIVE = {"monzo": 1}
    assert summary(run())["due"] == 0  # keep-alive is per provider


def test_refresher_keepalive_for_a_token_without_expiry_is_forced_once(granted, provider):
    association = granted(1)[0]
    merge_extra_data(association.pk, {"expires_at": None, "refreshed_at": ago(10 * 86400)})
    refresher = Refresher(within=600, keepalive={"demo": 86400})

    assert refresher.refresh(association.pk) is Outcome.REFRESHED
    assert refresher.refresh(association.pk) is Outcome.SKIPPED  # refreshed_at is now recent
    assert provider.stats()["token_calls"]["refresh_token"] == 1


def test_reauth_required_is_not_retried_and_recorded_once(granted, provider):
    association = granted(1, expires_at=ago(10))[0]
    provider.revoke_grant(association.user.username)
    sleeps: list[float] = []

    outcome = Refresher(within=600, sleep=sleeps.append).refresh(association.pk)

    assert outcome is Outcome.REAUTH_REQUIRED
    assert sleeps == []
    assert provider.stats()["token_calls"]["refresh_token"] == 1
    kinds = list(
        CredentialEvent.objects.filter(association=association).values_list("kind", flat=True)
    )
    assert kinds == [CredentialEvent.Kind.REAUTH_REQUIRED]
    assert CredentialState.objects.get(association=association).status == "reauth_required"
    assert due_associations(within=600, now=time.time()) == []  # skipped from now on


def test_transient_failures_are_retried_with_backoff_and_jitter(granted, provider):
    association = granted(1, expires_at=ago(10))[0]
    provider.fault("server_error", count=2)
    sleeps: list[float] = []
    refresher = Refresher(
        within=600,
        policy=RetryPolicy(attempts=3, base=2.0, cap=60.0),
        sleep=sleeps.append,
        rand=lambda: 0.5,
    )

    assert refresher.refresh(association.pk) is Outcome.REFRESHED

    assert sleeps == [1.5, 3.0]  # 2s then 4s ceilings, half fixed, half jitter (0.5 here)
    assert provider.stats()["token_calls"]["refresh_token"] == 3
    kinds = list(
        CredentialEvent.objects.filter(association=association)
        .order_by("pk")
        .values_list("kind", "detail")
    )
    assert [kind for kind, _ in kinds] == ["refresh_failed", "refresh_failed", "refreshed"]
    assert all(detail for kind, detail in kinds if kind == "refresh_failed")  # the cause


def test_gives_up_after_the_attempts_allowed_leaving_credentials_intact(granted, provider):
    association = granted(1, expires_at=ago(10))[0]
    before = UserSocialAuth.objects.get(pk=association.pk).extra_data
    provider.fault("server_error", count=None)
    sleeps: list[float] = []

    outcome = Refresher(
        within=600, policy=RetryPolicy(attempts=3, base=1.0), sleep=sleeps.append
    ).refresh(association.pk)

    assert outcome is Outcome.FAILED
    assert len(sleeps) == 2
    assert provider.stats()["token_calls"]["refresh_token"] == 3
    assert UserSocialAuth.objects.get(pk=association.pk).extra_data == before


def test_provider_failures_are_outcomes_not_an_error_exit(granted, provider, settings):
    settings.CUSTODIAN_REFRESH_ATTEMPTS = 1  # no retry, so no waiting
    granted(2, expires_at=ago(10))
    provider.fault("server_error", count=1)

    counts = summary(run("--concurrency=1"))  # returns normally: exit status 0

    assert (counts["refreshed"], counts["failed"], counts["errors"]) == (1, 1, 0)


def test_unexpected_errors_make_the_exit_status_non_zero(granted, provider, monkeypatch):
    granted(2, expires_at=ago(10))

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    # Every refresh, alone or in a chunk, builds its backend here.
    monkeypatch.setattr("integrations.refreshing.single_flight.backend_instance", broken)
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 unexpected errors"):
        run("--concurrency=2", stdout=out)
    assert summary(out.getvalue())["errors"] == 2


def test_progress_bar_only_on_a_terminal(granted, provider):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    granted(3, expires_at=ago(10))
    output = run("--concurrency=2", stdout=Terminal())

    assert "Refreshing" in output and "3/3" in output
    assert summary(output)["refreshed"] == 3


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    policy = RetryPolicy(attempts=10, base=2.0, cap=30.0)

    lows = [policy.delay(attempt, rand=lambda: 0.0) for attempt in range(1, 7)]
    highs = [policy.delay(attempt, rand=lambda: 1.0) for attempt in range(1, 7)]

    assert lows == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert highs == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_rate_limiter_spaces_calls_per_provider():
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter({"monzo": 5.0}, clock=lambda: now[0], sleep=sleep)

    for _ in range(6):
        limiter.acquire("monzo")
    limiter.acquire("demo")  # not listed: never waits

    assert waits == pytest.approx([0.2] * 5)
    assert now[0] == pytest.approx(101.0)


def test_a_rate_limit_slot_too_far_away_is_not_taken():
    now = [100.0]
    limiter = RateLimiter({"monzo": 2.0}, clock=lambda: now[0], sleep=lambda s: None)

    assert limiter.acquire("monzo", at_most=1.0) == 0.0
    assert limiter.acquire("monzo", at_most=1.0) == pytest.approx(0.5)
    assert limiter.acquire("monzo", at_most=1.0) == pytest.approx(1.0)
    assert limiter.acquire("monzo", at_most=1.0) is None  # 1.5 s away: left for later
    assert limiter.acquire("monzo") == pytest.approx(1.5)  # nor was it reserved


def test_rate_limit_setting_spaces_the_commands_refreshes(granted, provider, settings):
    settings.CUSTODIAN_REFRESH_RATE_LIMITS = {"demo": 20.0}
    granted(4, expires_at=ago(10))
    stamps: list[float] = []

    def stamp(outcome: Outcome) -> None:
        stamps.append(time.monotonic())

    refresher = Refresher.from_settings()
    started = time.monotonic()
    counts = refresh_all(
        [item.association_id for item in due_associations(within=600, now=time.time())],
        refresher,
        concurrency=4,
        on_outcome=stamp,
    )

    assert counts[Outcome.REFRESHED] == 4
    # Four calls at 20/s cannot all start within less than 3 intervals of 50 ms.
    assert max(stamps) - started >= 0.15


def test_due_selection_uses_an_index(granted):
    granted(3, expires_at=ago(10))
    query = expiring(600, now=time.time())
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")  # tiny table: force the choice
            plan = query.explain()
        assert "Seq Scan" not in plan
    else:
        plan = query.explain()
        assert "SCAN integrations_credentialstate" not in plan.replace("USING INDEX", "")
    assert "credstate_status_expiry" in plan or "credentialstate_expires_at" in plan, plan


def test_backfill_migration_fills_missing_state_from_extra_data(granted):
    migration = import_module("integrations.migrations.0003_backfill_credential_state")
    old, current = granted(2)
    bare = granted(1)[0]
    expires, refreshed = ago(30), ago(3600)
    UserSocialAuth.objects.filter(pk=old.pk).update(
        extra_data={
            **old.extra_data,
            "expires_at": expires,
            "status": "awaiting_approval",
            "refreshed_at": refreshed,
        }
    )
    UserSocialAuth.objects.filter(pk=bare.pk).update(extra_data={})
    CredentialState.objects.filter(association__in=[old, bare]).delete()
    CredentialState.objects.filter(association=current).update(status="sentinel")

    migration.backfill(apps, types.SimpleNamespace(connection=connection))

    state = CredentialState.objects.get(association=old)
    assert state.expires_at == datetime.fromtimestamp(expires, UTC)
    assert state.status == "awaiting_approval"
    assert state.last_refreshed_at == datetime.fromtimestamp(refreshed, UTC)
    bare_state = CredentialState.objects.get(association=bare)
    assert (bare_state.expires_at, bare_state.status) == (None, "active")
    assert CredentialState.objects.get(association=current).status == "sentinel"  # left alone
    assert [due.association_id for due in due_associations(within=0, now=time.time())] == [old.pk]
    assert due_associations(within=0, now=time.time())[0].reason == Reason.EXPIRING
    (operation,) = migration.Migration.operations
    assert operation.reverse_code is RunPython.noop  # reversible, as a no-op


def test_duration_parses_plain_seconds_and_units():
    assert [duration(text) for text in ("90", "600s", "10m", "1h", "2d")] == [
        90,
        600,
        600,
        3600,
        172800,
    ]
    with pytest.raises(Exception, match="not a duration"):
        duration("ten minutes")
