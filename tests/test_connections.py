"""The people's side: the connections page, Monzo's in-app approval, Try it, reconnect,
disconnect with confirmation — through the real loopback provider."""

from __future__ import annotations

import re

import pytest
from social_django.models import UserSocialAuth

from integrations import AwaitingApproval, connection_approved, get_session
from tests.conftest import connect, expire_locally

pytestmark = pytest.mark.django_db


def page(client) -> str:
    return client.get("/connections/").content.decode()


def test_monzo_waits_for_in_app_approval_then_turns_active(
    client, provider, django_capture_on_commit_callbacks
):
    response = connect(client, provider, "monzo")
    association = UserSocialAuth.objects.get(provider="monzo")
    user = association.user
    assert "approve access" in client.get(response["Location"]).content.decode()
    content = page(client)
    assert "Waiting for approval" in content
    assert "Open the <strong>Monzo app</strong>" in content
    assert "check again" in content
    with pytest.raises(AwaitingApproval):
        get_session(user, "monzo")

    still = client.post(f"/connections/{association.pk}/check/", follow=True).content.decode()
    assert "still says access is not approved" in still

    approvals = []

    def on_approved(sender, association, **kwargs):
        approvals.append(sender)

    connection_approved.connect(on_approved)
    provider.approve("alice")
    try:
        # The signal goes out once the approval is committed.
        with django_capture_on_commit_callbacks(execute=True):
            done = client.post(f"/connections/{association.pk}/check/", follow=True)
        done = done.content.decode()
    finally:
        connection_approved.disconnect(on_approved)

    assert "access is approved and working" in done
    assert "Active" in done
    assert "Alice&#x27;s current account" in done  # the friendly name, fetched once
    assert approvals == ["monzo"]
    assert get_session(user, "monzo").get("/accounts").status_code == 200


def test_try_it_shows_the_api_answer_and_refreshes_transparently(connected, client, provider):
    _, association = connected()
    expire_locally(association)

    content = client.post(f"/connections/{association.pk}/try/").content.decode()

    assert "HTTP 200" in content
    assert "&quot;user_id&quot;: &quot;user_alice&quot;" in content
    assert provider.stats()["token_calls"]["refresh_token"] == 1


def test_revoked_grant_shows_needs_reconnect_and_reconnect_restores_it(connected, client, provider):
    _, association = connected()
    expire_locally(association)
    provider.revoke_grant("alice")

    after_try = client.post(f"/connections/{association.pk}/try/", follow=True).content.decode()

    assert "no longer accepts this connection" in after_try
    assert "Needs reconnect" in after_try and "Reconnect</button>" in after_try
    connect(client, provider, "demo")
    association.refresh_from_db()
    assert association.extra_data["status"] == "active"
    assert UserSocialAuth.objects.count() == 1
    assert "Try it" in page(client)


def test_disconnect_asks_first_and_requires_another_way_to_log_in(connected, client):
    user, association = connected()

    confirm = client.get(f"/connections/{association.pk}/disconnect/").content.decode()
    assert "only way you log in" in confirm
    assert "Yes, disconnect" not in confirm

    response = client.post(
        "/account/password/",
        {"new_password1": "correct-horse-battery", "new_password2": "correct-horse-battery"},
        follow=True,
    )
    assert "Your password is set" in response.content.decode()
    confirm = client.get(f"/connections/{association.pk}/disconnect/").content.decode()
    assert "Yes, disconnect" in confirm

    done = client.post(f"/disconnect/demo/{association.pk}/", follow=True).content.decode()
    assert "was disconnected" in done
    assert not UserSocialAuth.objects.exists()
    user.refresh_from_db()
    assert user.check_password("correct-horse-battery")


def test_flash_message_after_connecting(client, provider):
    response = connect(client, provider, "demo")
    content = client.get(response["Location"]).content.decode()
    assert "Demo provider account" in content and "is connected" in content


@pytest.mark.parametrize("action", ["check/", "try/", "disconnect/"])
def test_nobody_acts_on_someone_elses_account(
    action, connected, client, django_user_model, provider
):
    _, association = connected()
    intruder = django_user_model.objects.create_user("mallory", password="a-long-password-1")
    client.force_login(intruder)
    method = client.get if action == "disconnect/" else client.post
    assert method(f"/connections/{association.pk}/{action}").status_code == 404
    assert provider.stats()["token_calls"].get("refresh_token", 0) == 0


def test_pages_fit_without_javascript(client, connected):
    connected()
    content = page(client)
    # The only script is the deferred static one that localises times; what it improves is
    # already on the page ("just now", the UTC time), so nothing depends on it.
    assert re.findall(r"<script[^>]*>.*?</script>", content, re.S) == [
        '<script src="/static/js/moments.js" defer></script>'
    ]
    assert ">just now</span>" in content and " UTC</span>" in content
    assert 'name="viewport"' in content
