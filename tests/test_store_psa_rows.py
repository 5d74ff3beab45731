"""Rows written by stock Python Social Auth, before the site adopted Custodian: read as they
are, with their expiry read by PSA's own rules, the same for a request and for the index.

The rows are written the stock way for real (tests/conftest.py, StockRows): a real token
response from the loopback provider through the backend's own ``extra_data``; plaintext
tokens, ``expires`` relative to ``auth_time``.
"""

from __future__ import annotations

import time
import types
from datetime import datetime
from importlib import import_module

import pytest
from django.apps import apps
from django.db import connection
from social_django.models import UserSocialAuth

from integrations import get_session
from integrations.background.due import due_associations
from integrations.background.refresher import Outcome, Refresher
from integrations.models import CredentialState
from integrations.store.credentials import expires_at_of, read_credentials
from integrations.store.times import at
from integrations.store.writes import merge_extra_data
from tests.conftest import raw_extra_data

pytestmark = pytest.mark.django_db


def refresh_calls(provider) -> int:
    return provider.stats()["token_calls"].get("refresh_token", 0)


def indexed_expiry(association: UserSocialAuth) -> datetime | None:
    return CredentialState.objects.get(association=association).expires_at


def test_a_stock_row_reads_as_plaintext_with_its_expiry_from_auth_time(stock):
    association = stock(1)[0]
    data = association.extra_data
    assert set(data) == {"auth_time", "access_token", "token_type", "refresh_token",
                         "expires", "user_id"}
    assert data["access_token"] in stock.tokens and data["expires"] == 3600

    credentials = read_credentials(data)

    assert (credentials.access_token, credentials.refresh_token) == (
        data["access_token"], data["refresh_token"]
    )
    assert credentials.expires_at == data["auth_time"] + 3600
    assert credentials.status == "active"
    # The index of a plain save (PSA's own API) says the same.
    assert indexed_expiry(association) == at(data["auth_time"] + 3600)
    association.extra_data["auth_time"] -= 600
    association.save()
    assert indexed_expiry(association) == at(data["auth_time"] + 3600)


@pytest.mark.parametrize(
    "extra_data",
    [
        {"auth_time": 1_800_000_000, "expires": 3600},
        {"auth_time": 1_800_000_000, "expires": 1_800_007_200},  # absolute: past two years
        {"auth_time": 1_800_000_000, "expires": "3600"},
        {"auth_time": 1_800_000_000, "expires_in": 600, "expires": 3600},  # expires_in first
        {"auth_time": 1_800_000_000, "expires_on": 1_800_000_900, "expires_in": 600},
        {"expires_on": 1_800_000_900},
        {"expires": 1_800_000_900},
    ],
)
def test_the_expiry_of_a_stock_row_is_what_social_core_computes(extra_data, time_machine):
    """Compared with social-core's own UserMixin.expiration_timedelta, at a fixed now."""
    now = 1_800_000_300
    time_machine.move_to(now, tick=False)
    psa = UserSocialAuth(provider="demo", uid="u", extra_data=extra_data).expiration_timedelta()

    assert expires_at_of(extra_data) == now + psa.total_seconds()


@pytest.mark.parametrize(
    "extra_data",
    [
        {},
        {"expires": 3600},  # PSA: an hour from whenever it is asked, so never due
        {"expires_in": 3600, "auth_time": 0},
        {"auth_time": 1_800_000_000, "expires": "soon"},
        {"auth_time": 1_800_000_000, "expires_on": None, "expires": None},
    ],
)
def test_a_stock_expiry_that_cannot_be_placed_in_time_is_unknown(extra_data):
    assert expires_at_of(extra_data) is None
    assert expires_at_of({**extra_data, "expires_at": 1_900_000_000}) == 1_900_000_000


def test_a_stock_row_works_with_get_session(stock, provider):
    association = stock(1)[0]
    before = raw_extra_data(association)

    response = get_session(association.user, "demo").get("/ping/whoami")

    assert response.status_code == 200
    assert response.json()["user_id"] == association.uid
    assert refresh_calls(provider) == 0
    assert raw_extra_data(association) == before


def test_a_due_stock_row_is_refreshed_into_custodians_shape(stock, provider, time_machine):
    association = stock(1)[0]
    old = read_credentials(association.extra_data)
    time_machine.move_to(old.expires_at + 10, tick=False)

    response = get_session(association.user, "demo").get("/ping/whoami")

    assert response.status_code == 200
    assert refresh_calls(provider) == 1
    association.refresh_from_db()
    data = association.extra_data
    new = read_credentials(data)
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token
    assert data["expires_at"] == new.expires_at > time.time() + 3000
    assert "expires" not in data, "PSA's stale expiry would contradict expires_at"
    assert data["auth_time"] and data["user_id"] == association.uid
    assert new.access_token not in raw_extra_data(association)
    assert indexed_expiry(association) == at(data["expires_at"])


def test_the_background_refresh_finds_a_due_stock_row_through_the_index(
    stock, provider, time_machine
):
    association = stock(1)[0]
    expires_at = read_credentials(association.extra_data).expires_at
    time_machine.move_to(expires_at - 60, tick=False)

    due = due_associations(within=600, now=time.time())
    outcome = Refresher(within=600).attempt(association.pk).outcome

    assert [item.association_id for item in due] == [association.pk]
    assert outcome is Outcome.REFRESHED
    assert refresh_calls(provider) == 1


def test_a_write_of_expires_at_removes_psas_expiry_keys(stock):
    association = stock(1)[0]

    merge_extra_data(association.pk, {"expires_at": 1_900_000_000})

    association.refresh_from_db()
    assert "expires" not in association.extra_data
    assert association.extra_data["auth_time"]  # only the expiry keys go
    assert indexed_expiry(association) == at(1_900_000_000)


def test_the_migration_indexes_the_expiry_of_stock_rows(stock, granted):
    migration = import_module("integrations.migrations.0004_credential_event_adopted")
    indexed, missing = stock(2)
    custodian = granted(1)[0]
    # As 0003 left them: indexed with no expiry, or (saved with no signal) not at all.
    CredentialState.objects.filter(association=indexed).update(expires_at=None)
    CredentialState.objects.filter(association=missing).delete()
    CredentialState.objects.filter(association=custodian).update(status="sentinel")

    migration.reindex_psa_expiry(apps, types.SimpleNamespace(connection=connection))

    for row in (indexed, missing):
        assert indexed_expiry(row) == at(row.extra_data["auth_time"] + 3600)
    assert CredentialState.objects.get(association=missing).status == "active"
    assert CredentialState.objects.get(association=custodian).status == "sentinel"
