"""extra_data is the record, CredentialState its index: they never disagree."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from social_django.models import UserSocialAuth

from integrations.models import CredentialState
from integrations.store.times import at
from integrations.store.writes import merge_extra_data

pytestmark = pytest.mark.django_db


def test_a_save_through_python_social_auth_updates_the_index(django_user_model):
    user = django_user_model.objects.create_user("psa")
    association = UserSocialAuth.objects.create(
        user=user, provider="demo", uid="u1", extra_data={"expires_at": 2_000_000_000}
    )
    state = CredentialState.objects.get(association=association)
    assert (state.expires_at, state.status) == (at(2_000_000_000), "active")

    # Python Social Auth's own API: set_extra_data and save the whole row.
    association.set_extra_data({"expires_at": 2_000_000_600, "status": "reauth_required"})
    association.save()

    state.refresh_from_db()
    assert (state.expires_at, state.status) == (at(2_000_000_600), "reauth_required")


def test_extra_data_and_index_are_written_in_one_transaction(django_user_model, monkeypatch):
    user = django_user_model.objects.create_user("atomic")
    association = UserSocialAuth.objects.create(
        user=user, provider="demo", uid="u2", extra_data={"expires_at": 2_000_000_000}
    )

    CredentialState.objects.filter(association=association).delete()  # its index is written anew

    def broken(*args, **kwargs):
        raise IntegrityError("the index write failed")

    monkeypatch.setattr(CredentialState.objects, "get_or_create", broken)
    with pytest.raises(IntegrityError):
        merge_extra_data(association.pk, {"expires_at": 2_000_000_900})

    association.refresh_from_db()
    assert association.extra_data["expires_at"] == 2_000_000_000, "no half-written credential"


def test_a_save_that_leaves_extra_data_alone_leaves_the_index_alone(django_user_model):
    user = django_user_model.objects.create_user("partial")
    association = UserSocialAuth.objects.create(
        user=user, provider="demo", uid="u3", extra_data={"expires_at": 2_000_000_000}
    )
    merge_extra_data(association.pk, {"status": "reauth_required"})  # the instance is now stale

    association.uid = "u3-renamed"
    association.save(update_fields=["uid"])

    assert CredentialState.objects.get(association=association).status == "reauth_required"
