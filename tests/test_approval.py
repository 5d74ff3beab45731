"""Monzo's in-app approval, noticed without a button: the signal at the first sign of
approval and once per approval, every background run re-checking what awaits approval, an
API 403 putting an association back to waiting, and disconnect refreshing an expired token
so that logout really ends the grant — all against the loopback provider playing Monzo."""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Iterator

import pytest
import requests
from django.core.management import call_command
from django.db import connection, connections
from social_django.models import UserSocialAuth

from backends.monzo import MONZO
from backends.profiles import Revocation, profile_for, register, registered
from integrations import AwaitingApproval, connection_approved, credentials_refreshed, get_session
from integrations.background import tasks
from integrations.models import CredentialEvent, CredentialState
from integrations.refreshing.approval import check_again, note_awaiting
from integrations.store.credentials import Credentials, read_credentials
from site_config.providers import demo_provider_declaration
from tests.conftest import DEMO_CLIENT, MONZO_CLIENT, connect, expire_locally

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 10


class Approvals:
    """Records each connection_approved: provider, association, its status then, and whether
    the receiver ran inside a transaction (it must not: the approval is committed first)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str, bool]] = []

    def __call__(self, sender, association, **kwargs) -> None:
        self.calls.append(
            (sender, association.pk, association.extra_data["status"], connection.in_atomic_block)
        )


@pytest.fixture
def approvals() -> Iterator[Approvals]:
    receiver = Approvals()
    connection_approved.connect(receiver)
    yield receiver
    connection_approved.disconnect(receiver)


@pytest.fixture
def monzo_profile() -> Iterator:
    """`monzo_profile(**changes)`: Monzo's profile with changes, for this test only."""
    yield lambda **changes: register(dataclasses.replace(MONZO, **changes))
    register(MONZO)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("refresh_tokens", *args, stdout=out)
    return out.getvalue()


def kinds(association: UserSocialAuth) -> list[tuple[str, str]]:
    return list(
        CredentialEvent.objects.filter(provider=association.provider, uid=association.uid)
        .order_by("pk")
        .values_list("kind", "detail")
    )


def monzo(uid: str = "user_alice") -> UserSocialAuth:
    return UserSocialAuth.objects.get(provider="monzo", uid=uid)


# --- the first sign of approval, once per approval -------------------------------------------


def test_signal_fires_once_when_already_approved_at_login(client, provider, approvals):
    provider.approve("alice")

    connect(client, provider, "monzo")

    association = monzo()
    assert association.extra_data["status"] == "active"
    assert isinstance(association.extra_data["approved_at"], float)
    assert approvals.calls == [("monzo", association.pk, "active", False)]
    # Later checks of the active association never send it again.
    assert check_again(association) is True
    assert "awaiting approval" not in run()  # nothing awaits: no approval line
    assert len(approvals.calls) == 1
    assert kinds(association) == [("connected", ""), ("approved", "")]


def test_a_new_login_is_a_new_approval(client, provider, approvals):
    provider.approve("alice")
    connect(client, provider, "monzo")
    connect(client, provider, "monzo")  # logged in again: Monzo asks for approval again

    association = monzo()
    assert [call[1] for call in approvals.calls] == [association.pk, association.pk]
    assert [kind for kind, _ in kinds(association)] == [
        "connected", "approved", "connected", "approved"
    ]


def test_providers_without_an_approval_step_send_no_signal(client, provider, approvals):
    connect(client, provider, "demo")

    association = UserSocialAuth.objects.get(provider="demo")
    assert association.extra_data["status"] == "active"
    assert "approved_at" not in association.extra_data
    assert approvals.calls == []


def test_checks_at_once_record_one_approval(client, provider, approvals):
    connect(client, provider, "monzo")
    provider.approve("alice")
    pk = monzo().pk
    start = threading.Barrier(6)
    answers: list[bool | None] = []

    def check() -> None:
        try:
            association = UserSocialAuth.objects.get(pk=pk)
            start.wait()
            answers.append(check_again(association))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [True] * 6
    assert len(approvals.calls) == 1
    assert CredentialEvent.objects.filter(kind="approved").count() == 1


# --- the background run notices approval given in the app -------------------------------------


def test_refresh_tokens_run_notices_approval_given_in_the_app(client, provider, approvals):
    for username in ("alice", "bob", "carol"):  # three Monzo accounts, none approved yet
        connect(client, provider, "monzo", username=username)
    assert CredentialState.objects.filter(status="awaiting_approval").count() == 3
    provider.approve("alice")  # in the app; nobody presses anything here

    output = run()

    assert "3 awaiting approval: approved 1, still awaiting 2, no answer 0" in output
    association = monzo()
    assert association.extra_data["status"] == "active"
    assert association.extra_data["display_name"] == "Alice's current account"
    assert CredentialState.objects.get(association=association).status == "active"
    assert approvals.calls == [("monzo", association.pk, "active", False)]
    assert kinds(association) == [
        ("connected", ""), ("awaiting_approval", ""), ("approved", "")
    ]
    assert get_session(association.user, "monzo", uid="user_alice").get("/accounts").ok
    # The next run asks about the other two only, and sends nothing again.
    assert "2 awaiting approval: approved 0, still awaiting 2" in run()
    assert len(approvals.calls) == 1
    assert provider.stats()["token_calls"]["refresh_token"] == 0  # no token call was needed


def test_the_check_uses_a_fresh_token_refreshed_once(client, provider, approvals):
    connect(client, provider, "monzo")
    association = monzo()
    provider.expire_access("alice")  # the provider no longer takes the token either
    expire_locally(association)
    provider.approve("alice")

    output = run("--concurrency=2")

    assert "1 due (1 expiring): refreshed 1" in output
    assert "1 awaiting approval: approved 1" in output
    stats = provider.stats()
    assert (stats["token_calls"]["refresh_token"], stats["refresh_rejected"]) == (1, 0)
    assert monzo().extra_data["status"] == "active"
    assert len(approvals.calls) == 1


def test_a_provider_that_cannot_be_asked_leaves_it_awaiting(client, provider, settings):
    settings.CUSTODIAN_REFRESH_ATTEMPTS = 1
    connect(client, provider, "monzo")
    expire_locally(monzo())
    provider.approve("alice")
    provider.fault("server_error", count=None)

    output = run("--provider=monzo")

    assert "1 awaiting approval: approved 0, still awaiting 0, no answer 1" in output
    assert monzo().extra_data["status"] == "awaiting_approval"
    provider.reset()
    provider.approve("alice")
    assert "approved 1" in run()


def test_dry_run_counts_what_awaits_approval_and_asks_nothing(client, provider):
    connect(client, provider, "monzo")
    provider.approve("alice")

    output = run("--dry-run", "--verbosity=2")

    assert f"association {monzo().pk}: awaiting approval" in output
    assert "1 awaiting approval; none checked." in output
    assert monzo().extra_data["status"] == "awaiting_approval"


def test_celery_sweep_queues_approval_checks_and_the_task_notices(
    client, provider, approvals, monkeypatch
):
    connect(client, provider, "monzo")
    connect(client, provider, "monzo", username="bob")
    queued: list[list[int]] = []

    def dispatch(args=(), kwargs=None, **options):
        queued.append(args[0])
        return type("Result", (), {"id": f"task-{len(queued)}"})()

    monkeypatch.setattr(tasks.check_approvals, "apply_async", dispatch)

    result = tasks.refresh_due_tokens()

    assert result["awaiting"] == 2 and result["approval_batches"] == ["task-1"]
    assert sorted(queued[0]) == sorted([monzo().pk, monzo("user_bob").pk])
    provider.approve("bob")
    counts = tasks.check_approvals(queued[0])
    assert (counts["approved"], counts["still_awaiting"], counts["error"]) == (1, 1, 0)
    assert approvals.calls == [("monzo", monzo("user_bob").pk, "active", False)]


# --- a later 403 puts the association back to waiting -----------------------------------------


@pytest.mark.parametrize(
    "code", ["forbidden.insufficient_permissions", "forbidden.verification_required"]
)
def test_a_403_asking_for_approval_flips_back_to_awaiting(code, connected, provider, approvals):
    user, association = connected("monzo")
    session = get_session(user, "monzo")
    assert session.get("/accounts").status_code == 200
    provider.withdraw_approval("alice", code=code)

    response = session.get("/accounts")

    assert response.status_code == 403 and response.json()["code"] == code  # still the caller's
    association.refresh_from_db()
    assert association.extra_data["status"] == "awaiting_approval"
    assert "approved_at" not in association.extra_data
    assert CredentialState.objects.get(association=association).status == "awaiting_approval"
    assert kinds(association)[-1] == ("awaiting_approval", f"the API answered {code}")
    with pytest.raises(AwaitingApproval):
        get_session(user, "monzo")

    # Approved again in the app: the next run notices, and this approval is signalled too.
    provider.approve("alice")
    assert "approved 1" in run()
    assert [call[1] for call in approvals.calls] == [association.pk, association.pk]
    assert get_session(user, "monzo").get("/accounts").status_code == 200


def test_only_the_profiles_approval_codes_flip(connected, provider, monzo_profile):
    monzo_profile(approval_codes=("forbidden.verification_required",))
    user, association = connected("monzo")
    provider.withdraw_approval("alice", code="forbidden.insufficient_permissions")

    assert get_session(user, "monzo").get("/accounts").status_code == 403

    association.refresh_from_db()
    assert association.extra_data["status"] == "active"
    assert [kind for kind, _ in kinds(association)] == ["connected", "approved"]


def test_an_answer_about_a_replaced_token_changes_nothing(connected, provider):
    user, association = connected("monzo")
    session = get_session(user, "monzo")  # holds the first login's token
    connected("monzo")  # a new login replaced it
    provider.withdraw_approval("alice")

    assert session.get("/accounts").status_code == 403  # said of the replaced token

    association.refresh_from_db()
    assert association.extra_data["status"] == "active"
    # Said of the token in force, the same answer counts.
    assert get_session(user, "monzo").get("/accounts").status_code == 403
    association.refresh_from_db()
    assert association.extra_data["status"] == "awaiting_approval"


def test_a_refusal_asked_before_the_approval_was_noticed_is_out_of_date(connected):
    _, association = connected("monzo")
    token = read_credentials(association.extra_data).access_token
    approved_at = association.extra_data["approved_at"]
    code = "forbidden.insufficient_permissions"

    assert note_awaiting(association, token, asked_at=approved_at - 1, code=code) is False
    assert association.extra_data["status"] == "active"
    assert note_awaiting(association, token, asked_at=approved_at + 1, code=code) is True
    assert association.extra_data["status"] == "awaiting_approval"


# --- disconnect refreshes an expired token before logout ---------------------------------------


@pytest.fixture
def linked_monzo(client, provider, django_user_model):
    """A local user (with a password) who linked Monzo as alice, approved in the app."""
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    provider.approve("alice")
    connect(client, provider, "monzo")
    return monzo()


@pytest.fixture
def refreshed_tokens() -> Iterator[list[Credentials]]:
    """The credentials each refresh stored, to probe them at the provider afterwards."""
    seen: list[Credentials] = []

    def receiver(sender, association, **kwargs) -> None:
        seen.append(read_credentials(association.extra_data))

    credentials_refreshed.connect(receiver)
    yield seen
    credentials_refreshed.disconnect(receiver)


def alive_at_provider(provider, credentials: Credentials) -> tuple[bool, bool]:
    """Whether the provider still takes the access token, and the refresh token."""
    whoami = requests.get(
        f"{provider.base_url}/ping/whoami",
        headers={"Authorization": f"Bearer {credentials.access_token}"},
        timeout=TIMEOUT,
    )
    refresh = requests.post(
        f"{provider.base_url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": credentials.refresh_token,
            "client_id": MONZO_CLIENT[0],
            "client_secret": MONZO_CLIENT[1],
        },
        timeout=TIMEOUT,
    )
    return whoami.status_code == 200, refresh.status_code == 200


def test_disconnecting_an_expired_monzo_association_refreshes_then_logs_out(
    linked_monzo, client, provider, refreshed_tokens
):
    association = linked_monzo
    provider.expire_access("alice")  # an idle night: Monzo no longer takes the access token
    expire_locally(association)

    response = client.post(f"/disconnect/monzo/{association.pk}/", follow=True)

    assert "was disconnected" in response.content.decode()
    stats = provider.stats()
    assert (stats["token_calls"]["refresh_token"], stats["refresh_ok"]) == (1, 1)
    assert stats["logout_calls"] == 1
    assert kinds(association) == [
        ("connected", ""), ("approved", ""), ("refreshed", ""), ("revoked", ""),
        ("disconnected", ""),
    ]
    # The grant is dead at Monzo: neither the refreshed access token nor its refresh token works.
    (fresh,) = refreshed_tokens
    assert alive_at_provider(provider, fresh) == (False, False)
    assert provider.stats()["refresh_rejected"] == 1


def test_without_refreshing_first_the_grant_would_survive(
    linked_monzo, client, provider, monzo_profile
):
    monzo_profile(refresh_before_revoke=False)
    association = linked_monzo
    stored = read_credentials(association.extra_data)
    provider.expire_access("alice")
    expire_locally(association)

    client.post(f"/disconnect/monzo/{association.pk}/")

    assert provider.stats()["logout_calls"] == 1
    assert ("revoked", "revocation failed (the provider refused); disconnected anyway") in kinds(
        association
    )
    assert alive_at_provider(provider, stored) == (False, True)  # the refresh token still works


def test_disconnecting_a_grant_the_provider_already_ended_does_not_log_out(
    linked_monzo, client, provider
):
    association = linked_monzo
    provider.revoke_grant("alice")
    expire_locally(association)

    response = client.post(f"/disconnect/monzo/{association.pk}/", follow=True)

    assert "was disconnected" in response.content.decode()
    assert provider.stats()["logout_calls"] == 0
    assert [kind for kind, _ in kinds(association)] == [
        "connected", "approved", "reauth_required", "disconnected"
    ]
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_a_live_token_is_revoked_without_a_refresh(linked_monzo, client, provider):
    client.post(f"/disconnect/monzo/{linked_monzo.pk}/")

    stats = provider.stats()
    assert (stats["token_calls"]["refresh_token"], stats["logout_calls"]) == (0, 1)


def test_every_profile_that_revokes_with_the_access_token_refreshes_first():
    by_access = {
        name
        for name, profile in registered().items()
        if isinstance(profile.revocation, Revocation) and profile.revocation.token == "access"
    }
    refreshing = {name for name, profile in registered().items() if profile.refresh_before_revoke}

    assert by_access == refreshing
    assert {
        "monzo", "dropbox-oauth2", "slack", "zoom-oauth2", "strava", "twitch", "github-app"
    } <= refreshing
    assert not {"google-oauth2", "discord", "salesforce-oauth2"} & refreshing


def test_a_declared_provider_revoking_with_the_access_token_refreshes_first(settings, provider):
    declaration = demo_provider_declaration(provider.base_url, *DEMO_CLIENT)
    declaration.pop("revocation_url", None)
    settings.CUSTODIAN_PROVIDERS = {
        "bearer": {
            **declaration,
            "revocation": {
                "url": f"{provider.base_url}/oauth2/logout", "token": "access",
                "placement": "bearer",
            },
        },
        "rfc7009": declaration,
    }

    assert profile_for("bearer").refresh_before_revoke is True
    assert profile_for("rfc7009").refresh_before_revoke is False


def test_a_failing_receiver_neither_fails_the_login_nor_undoes_the_approval(
    client, provider, caplog
):
    def broken(sender, association, **kwargs) -> None:
        raise RuntimeError("the back-fill broke")

    connection_approved.connect(broken)
    provider.approve("alice")
    try:
        response = connect(client, provider, "monzo")
    finally:
        connection_approved.disconnect(broken)

    assert response.status_code == 302
    assert monzo().extra_data["status"] == "active"
    assert "the back-fill broke" in caplog.text
