"""Nothing is lost and nothing answers 500: bad encryption keys, failed logins, providers
removed from the settings, and token endpoints slower than any API call, all against the real
loopback OAuth server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.checks import run_checks
from social_core.backends import utils as backend_utils
from social_core.exceptions import AuthPolicyError
from social_django.models import UserSocialAuth

from integrations import (
    CredentialsUnreadable,
    ProviderNotOffered,
    ReauthRequired,
    RefreshFailed,
    get_session,
    get_token,
    refresh,
)
from integrations.models import CredentialEvent, CredentialState
from integrations.store.credentials import read_credentials
from tests.conftest import connect, expire_locally, raw_extra_data

pytestmark = pytest.mark.django_db
REPO_ROOT = Path(__file__).resolve().parent.parent


def refresh_calls(provider) -> int:
    return provider.stats()["token_calls"].get("refresh_token", 0)


def flashed(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


# --- Bad keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [
        "not-a-fernet-key",
        "c2hvcnQ=",
        f"{Fernet.generate_key().decode()},oops",
        # base64 decoding skips these; Fernet refuses them on first use.
        f"{Fernet.generate_key().decode()}\u200b",
        f"é{Fernet.generate_key().decode()}",
    ],
    ids=["garbage", "too-short", "second-key-bad", "zero-width-space", "non-ascii"],
)
def test_malformed_keys_stop_check_and_startup_naming_the_variable(keys):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CUSTODIAN_ENCRYPTION_KEYS"}
    }
    env.update(DEBUG="true", CUSTODIAN_ENCRYPTION_KEYS=keys)

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "CUSTODIAN_ENCRYPTION_KEYS" in output
    assert "is not a Fernet key" in output
    assert "oops" not in output and "not-a-fernet-key" not in output


def test_system_check_reports_a_malformed_key_set_at_run_time(settings):
    settings.CUSTODIAN_ENCRYPTION_KEYS = ["nonsense"]
    errors = [message for message in run_checks() if message.id == "custodian.E004"]
    assert errors and "CUSTODIAN_ENCRYPTION_KEYS" in errors[0].msg


@pytest.fixture
def wrong_key(settings):
    """Swap the keys for a valid one that decrypts nothing stored so far."""

    def _swap() -> None:
        settings.CUSTODIAN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    return _swap


def test_wrong_key_never_answers_500_and_keeps_the_row(connected, client, wrong_key, provider):
    user, association = connected()
    user.set_password("a long enough password 1")
    user.save()
    client.force_login(user)
    before = raw_extra_data(association)
    wrong_key()

    page = client.get("/connections/")
    assert page.status_code == 200
    assert "Credentials unreadable: reconnect" in page.content.decode()
    assert ">Reconnect</button>" in page.content.decode()

    tried = client.post(f"/connections/{association.pk}/try/")
    assert tried.status_code == 302 and tried["Location"] == "/connections/"
    assert "can no longer be read" in flashed(tried)

    checked = client.post(f"/connections/{association.pk}/check/")
    assert checked.status_code == 302

    with pytest.raises(CredentialsUnreadable) as raised:
        get_session(user, "demo")
    assert isinstance(raised.value, ReauthRequired)
    with pytest.raises(CredentialsUnreadable):
        get_token(user, "demo")
    with pytest.raises(CredentialsUnreadable):
        refresh(association, force=True)
    expire_locally(association)
    before = raw_extra_data(association)
    with pytest.raises(CredentialsUnreadable):
        refresh(association)

    assert raw_extra_data(association) == before  # never overwritten by a failed read
    assert refresh_calls(provider) == 0


def test_admin_refresh_now_on_an_unreadable_row_is_a_message(connected, client, wrong_key):
    _, association = connected()
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1234")
    client.force_login(admin)
    wrong_key()

    response = client.post(f"/admin/social_django/usersocialauth/{association.pk}/refresh/")

    assert response.status_code == 302
    assert "credentials_unreadable" in flashed(response)
    change = client.get(f"/admin/social_django/usersocialauth/{association.pk}/change/")
    assert change.status_code == 200
    assert "undecryptable with the configured keys" in change.content.decode()


def test_reconnecting_overwrites_unreadable_credentials(connected, client, wrong_key, provider):
    user, association = connected()
    wrong_key()

    response = connect(client, provider, "demo")  # still logged in: reconnect

    assert response.status_code == 302
    association.refresh_from_db()
    assert UserSocialAuth.objects.filter(provider="demo").count() == 1
    credentials = read_credentials(association.extra_data)  # readable with the new key
    assert credentials.refresh_token
    assert get_session(user, "demo").get("/ping/whoami").status_code == 200


def test_logging_in_again_overwrites_unreadable_credentials(connected, client, wrong_key, provider):
    user, _ = connected()
    client.logout()
    wrong_key()

    response = connect(client, provider, "demo")

    assert response.status_code == 302
    assert client.get("/connections/").wsgi_request.user == user
    assert get_session(user, "demo").get("/ping/whoami").status_code == 200


def test_disconnect_works_on_unreadable_credentials(connected, client, wrong_key, provider):
    user, association = connected()
    user.set_password("a long enough password 1")
    user.save()
    client.force_login(user)
    wrong_key()

    response = client.post(f"/disconnect/demo/{association.pk}/")

    assert response.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    kinds = list(CredentialEvent.objects.filter(uid=association.uid).values_list("kind", "detail"))
    assert ("disconnected", "") in kinds
    assert any(kind == "revoked" and "could not be decrypted" in detail for kind, detail in kinds)


# --- A failed login changes nothing --------------------------------------------------------


def fail_after_association(backend, *args, social=None, **kwargs):
    """A pipeline step that fails after the user, the association and the tokens exist."""
    assert social is not None and social.pk
    raise AuthPolicyError(backend, code="authentication_disallowed", stage="pipeline")


@pytest.mark.parametrize("logged_in", [False, True], ids=["login", "link"])
def test_a_login_that_fails_in_the_pipeline_leaves_nothing_behind(
    client, provider, settings, logged_in
):
    settings.SOCIAL_AUTH_PIPELINE = (
        *settings.SOCIAL_AUTH_PIPELINE,
        "tests.test_resilience.fail_after_association",
    )
    if logged_in:
        client.force_login(get_user_model().objects.create_user("someone"))
    users = get_user_model().objects.count()

    response = connect(client, provider, "demo")

    assert 400 <= response.status_code < 500
    assert get_user_model().objects.count() == users
    assert not UserSocialAuth.objects.exists()
    assert not CredentialState.objects.exists()
    assert not CredentialEvent.objects.exists()


def test_a_login_to_a_deactivated_user_changes_nothing(connected, client, provider):
    user, association = connected()
    client.logout()
    user.is_active = False
    user.save()
    stored, events = raw_extra_data(association), CredentialEvent.objects.count()

    response = connect(client, provider, "demo")

    assert response.status_code == 403
    assert "is disabled" in response.content.decode()
    assert raw_extra_data(association) == stored, "the new tokens must not replace the stored ones"
    assert CredentialEvent.objects.count() == events
    assert "_auth_user_id" not in client.session


# --- A provider removed from the settings -------------------------------------------------


@pytest.fixture
def remove_demo(settings):
    """Take the demo provider out of the settings, as a redeploy without it would."""

    def _remove() -> None:
        settings.CUSTODIAN_PROVIDERS = {}
        settings.AUTHENTICATION_BACKENDS = [
            path for path in settings.AUTHENTICATION_BACKENDS if path != "backends.declared.demo"
        ]
        backend_utils.BACKENDSCACHE.clear()

    yield _remove
    backend_utils.BACKENDSCACHE.clear()


def test_removed_provider_is_explained_not_500(connected, client, remove_demo, provider):
    user, association = connected()
    remove_demo()
    # Sessions that came through the removed backend end with it; log in another way.
    client.force_login(user)

    page = client.get("/connections/").content.decode()
    assert "No longer offered" in page
    assert "Try it" not in page

    tried = client.post(f"/connections/{association.pk}/try/")
    assert tried.status_code == 302
    assert "no longer offers demo" in flashed(tried)
    checked = client.post(f"/connections/{association.pk}/check/")
    assert checked.status_code == 302
    assert "no longer offers demo" in flashed(checked)
    with pytest.raises(ProviderNotOffered):
        get_session(user, "demo")
    expire_locally(association)
    with pytest.raises(ProviderNotOffered):
        refresh(association)


def test_removed_provider_can_still_be_disconnected_by_its_user(
    connected, client, remove_demo, provider
):
    user, association = connected()
    user.set_password("a long enough password 1")
    user.save()
    client.force_login(user)
    remove_demo()

    confirm = client.get(f"/connections/{association.pk}/disconnect/")
    assert confirm.status_code == 200
    assert "no longer offers demo" in confirm.content.decode()
    response = client.post(f"/connections/{association.pk}/disconnect/")

    assert response.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    event = CredentialEvent.objects.get(uid=association.uid, kind="disconnected")
    assert event.detail == "provider no longer offered; not revoked"
    assert event.actor == user
    assert provider.stats()["revoke_calls"] == 0


def test_removed_provider_disconnect_keeps_the_only_way_to_log_in(connected, client, remove_demo):
    user, association = connected()  # no password: the provider is the only way in
    remove_demo()
    client.force_login(user)

    response = client.post(f"/connections/{association.pk}/disconnect/")

    assert response.status_code == 302
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()
    assert "only way you can log in" in flashed(response)


def test_removed_provider_disconnect_is_the_owners_only(connected, client, remove_demo):
    _, association = connected()
    intruder = get_user_model().objects.create_user("mallory", password="x-long-password-1")
    client.force_login(intruder)
    remove_demo()

    assert client.post(f"/connections/{association.pk}/disconnect/").status_code == 404
    assert client.get(f"/connections/{association.pk}/disconnect/").status_code == 404
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_offered_provider_is_not_disconnected_around_revocation(connected, client):
    user, association = connected()
    user.set_password("a long enough password 1")
    user.save()
    client.force_login(user)

    response = client.post(f"/connections/{association.pk}/disconnect/")

    assert response.status_code == 405
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_removed_provider_can_be_disconnected_in_the_admin(connected, client, remove_demo):
    _, association = connected()
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1234")
    client.force_login(admin)
    remove_demo()

    url = f"/admin/social_django/usersocialauth/{association.pk}/delete/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    event = CredentialEvent.objects.get(uid=association.uid, kind="disconnected")
    assert event.actor == admin


def test_admin_refresh_now_of_a_removed_provider_is_a_message(connected, client, remove_demo):
    _, association = connected()
    client.force_login(
        get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1234")
    )
    remove_demo()

    one = client.post(f"/admin/social_django/usersocialauth/{association.pk}/refresh/")
    bulk = client.post(
        "/admin/social_django/usersocialauth/",
        {"action": "refresh_now", "_selected_action": [association.pk]},
    )

    assert one.status_code == 302 and bulk.status_code == 302
    assert "no longer offered" in flashed(one)
    assert "no longer offered" in flashed(bulk)


def test_a_declaration_removed_but_still_listed_as_a_backend_is_not_offered(
    connected, client, settings
):
    user, association = connected()
    settings.CUSTODIAN_PROVIDERS = {}  # AUTHENTICATION_BACKENDS still names backends.declared.demo
    client.force_login(user)

    tried = client.post(f"/connections/{association.pk}/try/")
    checked = client.post(f"/connections/{association.pk}/check/")

    assert tried.status_code == 302 and checked.status_code == 302
    assert "no longer offers demo" in flashed(tried)
    with pytest.raises(ProviderNotOffered):
        get_session(user, "demo")


def test_background_refresh_skips_a_removed_provider(connected, remove_demo):
    from django.core.management import call_command

    _, association = connected()
    expire_locally(association)
    remove_demo()

    call_command("refresh_tokens", verbosity=0)  # no exception: counted, not crashed

    association.refresh_from_db()
    assert association.extra_data["status"] == "active"


# --- Slow token endpoints -----------------------------------------------------------------


def test_a_token_endpoint_answering_after_15_seconds_still_refreshes(connected, provider):
    user, association = connected()
    expire_locally(association)
    provider.latency(15_000)

    response = get_session(user, "demo").get("/ping/whoami")

    assert response.status_code == 200
    assert refresh_calls(provider) == 1
    # The grant is alive: the rotated refresh token refreshes again.
    provider.latency(0)
    association.refresh_from_db()
    refresh(association, force=True)
    assert provider.stats()["refresh_rejected"] == 0
    assert get_session(user, "demo").get("/ping/whoami").status_code == 200


def test_token_calls_do_not_use_the_api_timeout(settings):
    from integrations.providers.registry import backend_instance

    settings.CUSTODIAN_HTTP_TIMEOUT = 1.5
    settings.CUSTODIAN_REFRESH_TIMEOUT = 42.0
    backend = backend_instance("demo")

    assert backend.setting("REQUESTS_TIMEOUT") == 42.0


def test_invalid_grant_after_a_lost_answer_is_told_apart(connected, provider, settings):
    _user, association = connected()
    expire_locally(association)
    before = raw_extra_data(association)
    settings.CUSTODIAN_REFRESH_TIMEOUT = 1.0
    provider.latency(2_500)  # the provider rotates after we stopped listening

    with pytest.raises(RefreshFailed) as failed:
        refresh(association)
    assert failed.value.cause == "timeout"
    assert raw_extra_data(association) == before  # nothing lost on our side
    lost = CredentialEvent.objects.get(association=association, kind="refresh_failed")
    assert lost.detail.startswith("timeout; answer lost")

    # The next try reaches the provider after the first was processed (same latency, later
    # start): the old refresh token is spent.
    settings.CUSTODIAN_REFRESH_TIMEOUT = 30.0
    association.refresh_from_db()
    with pytest.raises(ReauthRequired) as rejected:
        refresh(association)

    assert rejected.value.reason == "refresh_response_lost"
    event = CredentialEvent.objects.get(association=association, kind="reauth_required")
    assert event.detail == "refresh_response_lost"
    assert refresh_calls(provider) == 2


def test_an_ordinary_invalid_grant_keeps_its_reason(connected, provider):
    _, association = connected()
    provider.revoke_grant("alice")
    expire_locally(association)

    with pytest.raises(ReauthRequired) as rejected:
        refresh(association)

    assert rejected.value.reason != "refresh_response_lost"
