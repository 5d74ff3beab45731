"""`manage.py adopt_credentials`: rows written by stock Python Social Auth, rewritten in
Custodian's shape (encrypted, ``expires_at``), once, resumably, without printing a token.

The rows are written the stock way for real (tests/conftest.py, StockRows): a real token
response from the loopback provider through the backend's own ``extra_data``. How such rows
work before adoption: tests/test_store_psa_rows.py.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from social_django.models import UserSocialAuth

from integrations import get_session
from integrations.models import CredentialEvent, CredentialState
from integrations.store import crypto
from integrations.store.adoption import Verdict, adopt_all, adopted_fields
from integrations.store.credentials import read_credentials
from integrations.store.times import at
from integrations.store.writes import merge_extra_data
from tests.conftest import raw_extra_data

pytestmark = pytest.mark.django_db

SUMMARY = re.compile(
    r"Adopted (\d+) associations? \((\d+) already in Custodian's shape, (\d+) unreadable"
    r"(?:, (\d+) without an OAuth 2\.0 token)?\); (\d+) errors?\."
)


def run(tokens: list[str], *args: str) -> tuple[str, str]:
    """Run the command; return its stdout and stderr, after checking neither shows a token."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("adopt_credentials", *args, stdout=out, stderr=err)
    finally:
        shown = out.getvalue() + err.getvalue()
        assert not [token for token in tokens if token in shown], "a token was printed"
    return out.getvalue(), err.getvalue()


def summary(output: str) -> dict[str, int]:
    match = SUMMARY.search(output)
    assert match, output
    adopted, current, unreadable, tokenless, errors = match.groups()
    return {
        "adopted": int(adopted),
        "current": int(current),
        "unreadable": int(unreadable),
        "tokenless": int(tokenless or 0),
        "errors": int(errors),
    }


def adopted_events(association: UserSocialAuth) -> int:
    return CredentialEvent.objects.filter(
        association=association, kind=CredentialEvent.Kind.ADOPTED
    ).count()


def refresh_calls(provider) -> int:
    return provider.stats()["token_calls"].get("refresh_token", 0)


def indexed_expiry(association: UserSocialAuth) -> datetime | None:
    return CredentialState.objects.get(association=association).expires_at


def test_adoption_encrypts_normalizes_and_records_each_row(stock, granted, provider):
    rows = stock(5)
    custodian = granted(1)[0]
    untouched = raw_extra_data(custodian)
    before = {row.pk: row.extra_data for row in rows}

    out, err = run(stock.tokens, "--batch-size=2")

    assert summary(out) == {
        "adopted": 5, "current": 1, "unreadable": 0, "tokenless": 0, "errors": 0
    }
    assert "Adopting" not in out and "\r" not in out  # no progress bar off a terminal
    assert err == ""
    for row in rows:
        stored = raw_extra_data(row)
        assert before[row.pk]["access_token"] not in stored
        assert before[row.pk]["refresh_token"] not in stored
        row.refresh_from_db()
        data = row.extra_data
        assert data["access_token"].startswith(crypto.PREFIX)
        assert data["refresh_token"].startswith(crypto.PREFIX)
        assert data["expires_at"] == before[row.pk]["auth_time"] + 3600  # not from now
        assert not {"expires", "expires_in", "expires_on"} & set(data)
        assert (data["auth_time"], data["user_id"]) == (
            before[row.pk]["auth_time"], before[row.pk]["user_id"]
        )
        assert (data["status"], data["token_type"], data["scope"]) == ("active", "Bearer", "")
        credentials = read_credentials(data)
        assert credentials.access_token == before[row.pk]["access_token"]
        assert credentials.refresh_token == before[row.pk]["refresh_token"]
        assert indexed_expiry(row) == at(data["expires_at"])
        assert adopted_events(row) == 1
    assert raw_extra_data(custodian) == untouched
    assert adopted_events(custodian) == 0

    response = get_session(rows[0].user, "demo").get("/ping/whoami")
    assert response.status_code == 200
    assert response.json()["user_id"] == rows[0].uid
    assert refresh_calls(provider) == 0


def test_a_second_run_changes_nothing_and_says_so(stock):
    rows = stock(3)
    run(stock.tokens)
    after = {row.pk: raw_extra_data(row) for row in rows}

    out, _ = run(stock.tokens)

    assert "Adopted 0 associations (3 already in Custodian's shape, 0 unreadable); 0 errors." in out
    assert {row.pk: raw_extra_data(row) for row in rows} == after
    assert all(adopted_events(row) == 1 for row in rows)


def test_dry_run_counts_and_writes_nothing(stock, granted):
    rows = stock(2)
    granted(1)
    before = {row.pk: raw_extra_data(row) for row in rows}

    out, _ = run(stock.tokens, "--dry-run")

    assert out.strip() == (
        "Dry run: would adopt 2 associations (1 already in Custodian's shape, 0 unreadable); "
        "nothing written."
    )
    assert {row.pk: raw_extra_data(row) for row in rows} == before
    assert not CredentialEvent.objects.filter(kind=CredentialEvent.Kind.ADOPTED).exists()


def test_an_interrupted_run_is_finished_by_running_again(stock, monkeypatch):
    rows = stock(5)
    written: list[int] = []

    def interrupted(association_id: int, fields: dict[str, Any]) -> None:
        merge_extra_data(association_id, fields)
        written.append(association_id)
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C mid-row: after its write, before its commit

    with monkeypatch.context() as patch:
        patch.setattr("integrations.store.adoption.merge_extra_data", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(stock.tokens)

    adopted = [row.pk for row in rows if adopted_events(row)]
    assert adopted == [rows[0].pk, rows[1].pk], "a prefix in pk order; the third rolled back"
    assert "expires" in UserSocialAuth.objects.get(pk=rows[2].pk).extra_data

    out, _ = run(stock.tokens)

    assert summary(out)["adopted"] == 3 and summary(out)["current"] == 2
    assert all(adopted_events(row) == 1 for row in rows)


def test_provider_option_limits_the_run(stock):
    demo = stock(2)
    monzo = stock(1, backend="monzo")[0]
    assert set(monzo.extra_data) == {"auth_time", "access_token", "token_type", "user_id"}

    out, _ = run(stock.tokens, "--provider=monzo")

    assert summary(out)["adopted"] == 1
    monzo.refresh_from_db()
    assert monzo.extra_data["access_token"].startswith(crypto.PREFIX)
    assert "expires_at" not in monzo.extra_data  # Monzo's stock backend keeps no expiry
    assert all(adopted_events(row) == 0 for row in demo)


def test_an_undecryptable_row_is_reported_and_left_alone(stock, settings):
    readable, lost = stock(2)
    # Tokens encrypted under a key the site no longer has (its PSA keys still there).
    gone = Fernet.generate_key().decode()
    current = settings.CUSTODIAN_ENCRYPTION_KEYS
    settings.CUSTODIAN_ENCRYPTION_KEYS = [gone]
    sealed = {name: crypto.encrypt(lost.extra_data[name])
              for name in ("access_token", "refresh_token")}
    settings.CUSTODIAN_ENCRYPTION_KEYS = current
    UserSocialAuth.objects.filter(pk=lost.pk).update(extra_data={**lost.extra_data, **sealed})
    before = raw_extra_data(lost)

    out, err = run(stock.tokens)  # an outcome, not a failure: no CommandError

    assert summary(out) == {
        "adopted": 1, "current": 0, "unreadable": 1, "tokenless": 0, "errors": 0
    }
    assert f"association {lost.pk} (demo, uid {lost.uid})" in err
    assert "cannot be decrypted" in err
    assert raw_extra_data(lost) == before
    assert adopted_events(lost) == 0 and adopted_events(readable) == 1


def test_rows_without_an_oauth2_token_are_counted_and_left_alone(stock, django_user_model):
    stock(1)
    user = django_user_model.objects.create(username="oauth1")
    oauth1 = UserSocialAuth.objects.create(
        user=user, provider="twitter", uid="t1",
        extra_data={"access_token": {"oauth_token": "x" * 20, "oauth_token_secret": "y" * 20}},
    )

    out, _ = run(stock.tokens)

    assert out.strip() == (
        "Adopted 1 association (0 already in Custodian's shape, 0 unreadable, "
        "1 without an OAuth 2.0 token); 0 errors."
    )
    oauth1.refresh_from_db()
    assert oauth1.extra_data["access_token"]["oauth_token"] == "x" * 20


def test_a_failing_row_is_counted_and_the_run_goes_on(stock, monkeypatch):
    rows = stock(3)

    def broken(association: UserSocialAuth, kind: str, **kwargs: Any) -> None:
        if association.pk == rows[1].pk:
            raise RuntimeError(f"cannot record {rows[1].extra_data['access_token']}")

    monkeypatch.setattr("integrations.store.adoption.record_event", broken)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 associations could not be adopted"):
        call_command("adopt_credentials", stdout=out, stderr=err)

    assert "Adopted 2 associations (0 already in Custodian's shape, 0 unreadable); 1 error." in (
        out.getvalue()
    )
    assert f"association {rows[1].pk} (demo, uid {rows[1].uid}): RuntimeError" in err.getvalue()
    assert not [token for token in stock.tokens if token in out.getvalue() + err.getvalue()]
    assert "expires" in UserSocialAuth.objects.get(pk=rows[1].pk).extra_data  # rolled back


def test_progress_bar_only_on_a_terminal(stock):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stock(3)
    out = Terminal()
    call_command("adopt_credentials", stdout=out)

    assert "Adopting" in out.getvalue() and "3/3" in out.getvalue()
    assert summary(out.getvalue())["adopted"] == 3


def test_adopted_fields_keep_provider_keys_and_seal_an_id_token():
    extra_data = {
        "auth_time": 1_800_000_000,
        "access_token": "plain-access-token-1",
        "id_token": "plain.id.token-2",
        "token_type": None,
        "expires_in": 1200,
        "instance_url": "https://example.my.salesforce.com",
        "status": "reauth_required",
    }

    fields = adopted_fields(extra_data)

    assert fields["id_token"].startswith(crypto.PREFIX)
    assert crypto.decrypt(fields["id_token"]) == "plain.id.token-2"
    assert fields["expires_at"] == 1_800_001_200
    assert fields["status"] == "reauth_required"  # a status already set is kept
    assert fields["token_type"] == "Bearer"
    assert {key for key, value in fields.items() if value is None} >= {
        "expires", "expires_in", "expires_on"
    }
    assert "instance_url" not in fields and "auth_time" not in fields  # left as they are


def test_adopt_all_yields_one_outcome_per_row_in_pk_order(stock):
    rows = stock(3)
    outcomes = list(adopt_all(batch_size=1, dry_run=True))
    assert [(o.association_id, o.verdict) for o in outcomes] == [
        (row.pk, Verdict.ADOPT) for row in rows
    ]

