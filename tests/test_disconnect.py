"""Disconnect: POST-only, owner-only, revokes at the provider, never blocked by revocation."""

from __future__ import annotations

import pytest
from social_django.models import UserSocialAuth

from integrations.models import CredentialEvent, CredentialState
from tests.conftest import connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def linked(client, provider, django_user_model):
    """A local user (with a password) who linked the demo provider as alice."""
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    connect(client, provider, "demo")
    return user, UserSocialAuth.objects.get(user=user)


@pytest.mark.parametrize("backend", ["demo", "monzo"])
def test_disconnect_revokes_and_removes(backend, client, provider, django_user_model):
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    connect(client, provider, backend)
    association = UserSocialAuth.objects.get(user=user)

    response = client.post(f"/disconnect/{backend}/{association.pk}/")

    assert response.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    stats = provider.stats()
    assert stats["revoke_calls" if backend == "demo" else "logout_calls"] == 1
    kinds = list(
        CredentialEvent.objects.filter(uid="user_alice")
        .order_by("pk")
        .values_list("kind", "detail")
    )
    # Monzo's association waited for approval in the app (nobody approved).
    waited = [("awaiting_approval", "")] if backend == "monzo" else []
    assert kinds == [("connected", ""), *waited, ("revoked", ""), ("disconnected", "")]
    assert not CredentialState.objects.filter(association_id=association.pk).exists()


def test_failed_revocation_still_disconnects_and_says_why(linked, client, settings):
    _user, association = linked
    settings.CUSTODIAN_PROVIDERS["demo"]["revocation_url"] = "http://127.0.0.1:9/revoke"

    client.post(f"/disconnect/demo/{association.pk}/")

    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    revoked = CredentialEvent.objects.get(kind="revoked")
    assert "revocation failed (connection_failed)" in revoked.detail


def test_disconnect_is_post_only(linked, client):
    _, association = linked
    assert client.get(f"/disconnect/demo/{association.pk}/").status_code == 405
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_disconnect_needs_csrf(linked, provider):
    from django.test import Client

    user, association = linked
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(f"/disconnect/demo/{association.pk}/").status_code == 403
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_nobody_disconnects_someone_elses_account(linked, client, django_user_model, provider):
    _, association = linked
    intruder = django_user_model.objects.create_user("mallory", password="a-long-password-1")
    client.force_login(intruder)

    client.post(f"/disconnect/demo/{association.pk}/")
    client.post("/disconnect/demo/")

    assert UserSocialAuth.objects.filter(pk=association.pk).exists()
    assert provider.stats()["revoke_calls"] == 0


def test_the_only_way_to_log_in_is_not_disconnected(client, provider):
    connect(client, provider, "demo")
    association = UserSocialAuth.objects.get()

    response = client.post(f"/disconnect/demo/{association.pk}/")

    assert response.status_code == 403
    assert b"only way you can log in" in response.content
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_connections_page_lists_accounts(linked, client):
    content = client.get("/connections/").content.decode()
    assert "user_alice" in content
    assert "Active" in content
    assert "Disconnect" in content
