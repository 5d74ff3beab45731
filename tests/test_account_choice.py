"""A provider account linked to no one, used to log in: the choice between a new account and
an existing one, through the real loopback provider, and the ways it could be abused."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

import pytest
import time_machine
from django.db import connection
from django.test import Client
from social_django.models import Partial, UserSocialAuth

from integrations.models import CredentialEvent, CredentialState
from integrations.psa.account_choice import SEALED, SESSION_KEY
from integrations.store import crypto
from integrations.store.credentials import read_credentials
from tests.conftest import CHOICE_URL, choose_account, connect, raw_extra_data

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-password-1"


@pytest.fixture
def alice(django_user_model):
    """Alice's account here, with a password and no provider linked (she disconnected it)."""
    return django_user_model.objects.create_user("alice", password=PASSWORD)


def ask(client: Client, provider, backend: str = "demo", username: str = "alice"):
    """Log in with the provider up to the choice page; return the page."""
    response = connect(client, provider, backend, username=username, choose=None)
    assert response.status_code == 302 and response["Location"] == CHOICE_URL
    return client.get(CHOICE_URL)


def decide(client: Client, action: str, **fields: str) -> str:
    """Make the choice; return the URL that resumes the login (not followed)."""
    answer = client.post(CHOICE_URL, {"action": action, **fields})
    assert answer.status_code == 302, answer.content[:500]
    assert answer["Location"].startswith("/complete/demo/?partial_token=")
    return answer["Location"]


def nothing_created(django_user_model, users_before: int = 0) -> None:
    assert django_user_model.objects.count() == users_before
    assert not UserSocialAuth.objects.exists()
    assert not CredentialEvent.objects.exists()


def raw_partials() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM social_auth_partial")
        return str(cursor.fetchall())


def sealed_tokens() -> dict:
    (data,) = Partial.objects.values_list("data", flat=True)
    return json.loads(crypto.decrypt(data["kwargs"]["response"][SEALED]))


# --- the choice itself ---------------------------------------------------------------------


def test_an_unlinked_provider_account_asks_first_and_creates_nothing(
    client, provider, django_user_model
):
    page = ask(client, provider)

    assert page.status_code == 200
    content = page.content.decode()
    assert 'Demo provider account <strong>alice</strong> (<code class="uid">user_alice</code>)' in (
        content
    )
    assert 'value="create" class="button">Create a new account' in content  # the primary one
    assert 'name="password"' in content and "Log in and link" in content
    assert "no-store" in page["Cache-Control"]
    nothing_created(django_user_model)
    assert provider.stats()["token_calls"]["authorization_code"] == 1


def test_the_paused_login_keeps_its_tokens_sealed_and_not_the_code(client, provider):
    ask(client, provider)

    tokens = sealed_tokens()
    raw = raw_partials()
    assert tokens["access_token"] and tokens["refresh_token"]
    assert tokens["access_token"] not in raw and tokens["refresh_token"] not in raw
    assert "enc:" in raw
    assert '"code"' not in raw and '"state"' not in raw
    assert tokens["access_token"] not in str(dict(client.session))


def test_create_makes_a_user_named_readably_and_logs_in(client, provider, django_user_model):
    ask(client, provider)

    response = choose_account(client, "create")

    assert response.status_code == 302 and response["Location"] == "/connections/"
    association = UserSocialAuth.objects.get(provider="demo", uid="user_alice")
    user = association.user
    assert user.username == "alice" and user.signup_provider == "demo"
    assert not user.has_usable_password()
    assert client.get("/connections/").context["user"] == user
    assert CredentialEvent.objects.filter(association=association, kind="connected").exists()
    assert Partial.objects.count() == 0 and SESSION_KEY not in client.session
    # No second trip to the provider: one code exchanged, the paused login's tokens stored.
    assert provider.stats()["token_calls"]["authorization_code"] == 1


def test_create_when_the_name_is_taken_adds_a_number(client, provider, alice, django_user_model):
    django_user_model.objects.create_user("Alice2")  # another case is the same name here
    ask(client, provider)

    choose_account(client, "create")

    association = UserSocialAuth.objects.get(provider="demo")
    assert association.user.username == "alice3"
    assert django_user_model.objects.count() == 3


def test_link_with_the_password_links_to_the_existing_account(
    client, provider, alice, django_user_model
):
    ask(client, provider)

    response = choose_account(client, "link", username="alice", password=PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/connections/"
    assert django_user_model.objects.count() == 1
    association = UserSocialAuth.objects.get(provider="demo", uid="user_alice")
    assert association.user == alice
    assert client.get("/connections/").context["user"] == alice
    # Stored as any login stores them: normalized, encrypted, with history.
    credentials = read_credentials(association.extra_data)
    raw = raw_extra_data(association)
    assert credentials.access_token not in raw and credentials.refresh_token not in raw
    assert "enc:" in raw
    event = CredentialEvent.objects.get(association=association)
    assert (event.kind, event.user, event.actor) == ("connected", alice, alice)
    assert provider.stats()["token_calls"]["authorization_code"] == 1
    alice.refresh_from_db()
    assert alice.signup_provider == "" and alice.check_password(PASSWORD)
    # From now on the provider logs her straight in.
    client.logout()
    assert connect(client, provider, choose=None)["Location"] == "/connections/"
    assert client.get("/connections/").context["user"] == alice


def test_the_login_goes_on_to_where_it_was_going(client, provider, alice):
    begin = client.post("/login/demo/", {"next": "/account/password/"})
    callback = urlsplit(provider.authorize(begin["Location"], username="alice"))
    assert client.get(f"{callback.path}?{callback.query}")["Location"] == CHOICE_URL

    response = choose_account(client, "link", username="alice", password=PASSWORD)

    assert response["Location"] == "/account/password/"


def test_link_by_logging_in_with_a_provider_already_linked(
    client, provider, django_user_model
):
    provider.approve("alice")
    connect(client, provider, "monzo")  # alice's account here, made with Monzo
    owner = UserSocialAuth.objects.get(provider="monzo").user
    client.logout()
    page = ask(client, provider)
    assert 'action="/login/monzo/"' in page.content.decode()
    assert 'name="next" value="/account/choose/"' in page.content.decode()

    begin = client.post("/login/monzo/", {"next": CHOICE_URL})
    callback = urlsplit(provider.authorize(begin["Location"], username="alice"))
    landed = client.get(f"{callback.path}?{callback.query}")
    assert landed["Location"] == CHOICE_URL
    confirm = client.get(CHOICE_URL)
    assert "Link it and continue" in confirm.content.decode()
    assert "Create a new account" not in confirm.content.decode()
    response = choose_account(client, "link")

    assert response.status_code == 302 and response["Location"] == "/connections/"
    assert UserSocialAuth.objects.get(provider="demo").user == owner
    assert django_user_model.objects.count() == 1
    assert client.get("/connections/").context["user"] == owner


def test_someone_logged_in_is_offered_the_link_only(client, provider, alice, django_user_model):
    ask(client, provider)
    client.force_login(alice)

    page = client.get(CHOICE_URL)
    refused = client.post(CHOICE_URL, {"action": "create"})

    assert "Link it to your account <strong>alice</strong>?" in " ".join(
        page.content.decode().split()
    )
    assert "Create a new account" not in page.content.decode()
    assert refused.status_code == 400
    nothing_created(django_user_model, users_before=1)


def test_a_link_that_fails_later_in_the_pipeline_changes_nothing(
    client, provider, alice, settings, django_user_model
):
    settings.SOCIAL_AUTH_PIPELINE = (
        *settings.SOCIAL_AUTH_PIPELINE,
        "tests.test_resilience.fail_after_association",
    )
    ask(client, provider)

    response = choose_account(client, "link", username="alice", password=PASSWORD)

    assert response.status_code == 403
    nothing_created(django_user_model, users_before=1)
    assert not CredentialState.objects.exists()
    assert "_auth_user_id" not in client.session
    assert Partial.objects.count() == 0  # used up: starting again means a new login


def test_cancel_creates_and_keeps_nothing(client, provider, django_user_model):
    ask(client, provider)

    response = client.post(CHOICE_URL, {"action": "cancel"})

    assert response.status_code == 302 and response["Location"] == "/login/"
    nothing_created(django_user_model)
    assert Partial.objects.count() == 0 and SESSION_KEY not in client.session


def test_choice_page_with_nothing_pending_says_so(client):
    response = client.get(CHOICE_URL)

    assert response.status_code == 410
    assert b"no login waiting for a choice" in response.content


@pytest.mark.parametrize("action", ["", "bogus", "link-everything"])
def test_an_unknown_action_is_a_bad_request_and_changes_nothing(
    client, provider, django_user_model, action
):
    ask(client, provider)

    response = client.post(CHOICE_URL, {"action": action})

    assert response.status_code == 400
    assert b"Create a new account" in response.content
    nothing_created(django_user_model)


# --- linking needs the account's password ----------------------------------------------------


def _error_page(client: Client, username: str, password: str) -> tuple[int, str]:
    fields = {"action": "link", "username": username, "password": password}
    response = client.post(CHOICE_URL, fields)
    content = response.content.decode()
    content = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", content)
    return response.status_code, content.replace(f'value="{username}"', 'value="…"')


def test_wrong_password_and_unknown_username_get_the_same_answer(
    client, provider, alice, django_user_model
):
    django_user_model.objects.create_user("frozen", password=PASSWORD, is_active=False)
    ask(client, provider)

    wrong_password = _error_page(client, "alice", "not-her-password")
    unknown_user = _error_page(client, "nobody-by-this-name", "not-her-password")
    inactive_user = _error_page(client, "frozen", PASSWORD)

    assert wrong_password[0] == unknown_user[0] == inactive_user[0] == 200
    assert wrong_password[1] == unknown_user[1] == inactive_user[1]
    assert "Please enter a correct username and password" in wrong_password[1]
    assert not UserSocialAuth.objects.exists()


def test_too_many_wrong_passwords_end_the_choice_whoever_was_tried(
    client, provider, alice, settings, django_user_model
):
    settings.CUSTODIAN_ACCOUNT_CHOICE_ATTEMPTS = 3
    ask(client, provider)

    statuses = [
        _error_page(client, username, "wrong")[0]
        for username in ("alice", "nobody", "alice")
    ]

    assert statuses == [200, 200, 429]
    assert Partial.objects.count() == 0 and SESSION_KEY not in client.session
    # Even the right password now finds nothing to link.
    late = client.post(CHOICE_URL, {"action": "link", "username": "alice", "password": PASSWORD})
    assert late.status_code == 410
    nothing_created(django_user_model, users_before=1)


def test_the_choice_form_needs_its_csrf_token(client, provider, alice, django_user_model):
    ask(client, provider)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies  # the same browser, posting from another site

    response = strict.post(
        CHOICE_URL, {"action": "link", "username": "alice", "password": PASSWORD}
    )

    assert response.status_code == 403
    assert SESSION_KEY in client.session and not client.session[SESSION_KEY]["decision"]
    nothing_created(django_user_model, users_before=1)


# --- the paused login is this session's, once, for a while -----------------------------------


def test_the_choice_expires(client, provider, settings, django_user_model):
    ask(client, provider)

    with time_machine.travel(time.time() + settings.CUSTODIAN_ACCOUNT_CHOICE_TTL + 1):
        page = client.get(CHOICE_URL)
        late = client.post(CHOICE_URL, {"action": "create"})

    assert page.status_code == 410 and b"took too long" in page.content
    assert late.status_code == 410
    assert Partial.objects.count() == 0
    nothing_created(django_user_model)


def test_a_choice_resumed_after_it_expired_creates_nothing(
    client, provider, settings, django_user_model
):
    ask(client, provider)
    resume = decide(client, "create")

    with time_machine.travel(time.time() + settings.CUSTODIAN_ACCOUNT_CHOICE_TTL + 1):
        response = client.get(resume)

    assert response.status_code == 410
    assert b"took too long" in response.content and b"Nothing was created" in response.content
    assert Partial.objects.count() == 0
    nothing_created(django_user_model)


def test_another_browser_cannot_use_the_token(provider, django_user_model):
    owner, stranger = Client(), Client()
    ask(owner, provider)
    resume = decide(owner, "create")

    refused = stranger.get(resume)

    assert refused.status_code == 403
    assert b"does not belong to this browser" in refused.content
    nothing_created(django_user_model)
    # The owner's login is untouched and still finishes.
    assert owner.get(resume)["Location"] == "/connections/"
    assert django_user_model.objects.count() == 1


def test_another_browser_with_its_own_choice_cannot_use_the_token(
    provider, alice, django_user_model
):
    victim, attacker = Client(), Client()
    ask(victim, provider, username="bob")
    resume = decide(victim, "create")
    ask(attacker, provider, username="carol")
    decide(attacker, "link", username="alice", password=PASSWORD)

    refused = attacker.get(resume)

    assert refused.status_code == 403
    nothing_created(django_user_model, users_before=1)


def test_a_replayed_token_is_refused(client, provider, django_user_model):
    ask(client, provider)
    resume = decide(client, "create")
    assert client.get(resume)["Location"] == "/connections/"
    client.logout()

    replay = client.get(resume)

    assert replay.status_code == 403
    assert django_user_model.objects.count() == 1 and UserSocialAuth.objects.count() == 1


@pytest.mark.parametrize(
    "token", ["0" * 32, "not-a-token", "", "../../etc", "x" * 5000, "'; DROP TABLE x;--"]
)
def test_a_made_up_token_gets_a_clear_page(client, provider, django_user_model, token):
    ask(client, provider)
    decide(client, "create")

    response = client.get("/complete/demo/", {"partial_token": token})

    assert response.status_code in (400, 403)
    assert b"othing was" in response.content  # "Nothing was created ...", "nothing was connected"
    nothing_created(django_user_model)


def test_a_token_nobody_chose_for_is_refused(client, provider, django_user_model):
    ask(client, provider)
    token = client.session[SESSION_KEY]["token"]

    response = client.get("/complete/demo/", {"partial_token": token})

    assert response.status_code == 403
    nothing_created(django_user_model)
    # The choice is still there to make.
    assert client.get(CHOICE_URL).status_code == 200


def test_the_token_does_not_resume_through_another_provider(
    client, provider, django_user_model
):
    ask(client, provider)
    resume = decide(client, "create")

    response = client.get(resume.replace("/complete/demo/", "/complete/monzo/"))

    assert response.status_code == 403
    nothing_created(django_user_model)


def test_an_abandoned_choice_does_not_hijack_the_next_login(client, provider, alice):
    ask(client, provider, username="alice")
    decide(client, "link", username="alice", password=PASSWORD)  # chosen, never resumed

    response = connect(client, provider, username="bob", choose=None)

    # The new login (bob's provider account) is asked about; alice's stays unlinked.
    assert response["Location"] == CHOICE_URL
    assert client.session[SESSION_KEY]["uid"] == "user_bob"
    assert Partial.objects.count() == 1
    assert not UserSocialAuth.objects.exists()


# --- a provider account linked to someone else meanwhile ---------------------------------------


@pytest.mark.parametrize("action", ["link", "create"])
def test_a_provider_account_linked_meanwhile_is_refused(
    client, provider, alice, django_user_model, action
):
    ask(client, provider)
    fields = {"username": "alice", "password": PASSWORD} if action == "link" else {}
    resume = decide(client, action, **fields)
    # Meanwhile, in another browser, mallory links the same provider account to herself.
    mallory = django_user_model.objects.create_user("mallory")
    elsewhere = Client()
    elsewhere.force_login(mallory)
    connect(elsewhere, provider, username="alice", choose=None)
    taken = UserSocialAuth.objects.get()
    before = taken.extra_data

    response = client.get(resume)

    assert response.status_code == 403
    assert b"already linked to another user" in response.content
    assert list(UserSocialAuth.objects.all()) == [taken]
    taken.refresh_from_db()
    assert taken.user == mallory and taken.extra_data == before
    assert django_user_model.objects.count() == 2
    assert "_auth_user_id" not in client.session


def test_an_account_deactivated_meanwhile_is_not_linked(client, provider, alice):
    ask(client, provider)
    resume = decide(client, "link", username="alice", password=PASSWORD)
    alice.is_active = False
    alice.save()

    response = client.get(resume)

    assert response.status_code == 403
    assert not UserSocialAuth.objects.exists()
    assert "_auth_user_id" not in client.session


def test_logged_in_linking_is_not_asked(client, provider, alice):
    client.force_login(alice)

    response = connect(client, provider, choose=None)

    assert response["Location"] == "/connections/"
    assert UserSocialAuth.objects.get(provider="demo").user == alice
