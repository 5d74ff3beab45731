"""The admin of social associations: health list, masking, history, actions, connect, prune."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, timedelta
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from social_django.models import UserSocialAuth

from integrations.admin.associations import AssociationAdmin
from integrations.admin.connect import PENDING_SESSION_KEY
from integrations.models import CredentialEvent
from integrations.store.credentials import fingerprint, read_credentials
from integrations.store.history import record_event
from integrations.store.writes import store_token_response
from tests.conftest import connect, raw_extra_data

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/social_django/usersocialauth/"
ADD_URL = f"{LIST_URL}add/"
EVENTS_URL = "/admin/integrations/credentialevent/"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """These tests create many users with passwords; real hashing is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def callback_url(backend: str) -> str:
    return f"http://testserver{LIST_URL}connect/complete/{backend}/"


def change_url(association: UserSocialAuth) -> str:
    return f"{LIST_URL}{association.pk}/change/"


def make_association(
    user,
    uid: str,
    *,
    provider: str = "demo",
    expires_in: int = 7200,
    refresh_token: bool = True,
    status: str = "active",
    refreshed_ago: int | None = None,
):
    """An association whose tokens went through the real token store (encrypted)."""
    # Keyed like the rows the login pipeline creates (both backends' ID_KEY is user_id).
    association = UserSocialAuth.objects.create(
        user=user, provider=provider, uid=uid, id_key="user_id"
    )
    now = time.time()
    response = {
        "access_token": f"access-{uid}-{secrets.token_hex(12)}",
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "read",
    }
    if refresh_token:
        response["refresh_token"] = f"refresh-{uid}-{secrets.token_hex(12)}"
    extra: dict[str, object] = {"status": status}
    if refreshed_ago is not None:
        extra["refreshed_at"] = int(now - refreshed_ago)
    store_token_response(association, response, previous_refresh_token=None, now=now, extra=extra)
    return association, response


def row_of(content: str, uid: str) -> str:
    """The changelist row (<tr>...</tr>) showing `uid`."""
    rows = [row for row in re.findall(r"<tr[^>]*>.*?</tr>", content, re.S) if f">{uid}<" in row]
    assert len(rows) == 1, f"{uid}: {len(rows)} rows"
    return rows[0].replace("\xa0", " ")


def uids_in_order(content: str, uids) -> list[str]:
    positions = {uid: content.find(f">{uid}<") for uid in uids}
    return [uid for uid, at in sorted(positions.items(), key=lambda item: item[1]) if at >= 0]


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def health_rows(django_user_model, time_machine):
    """One association in each health state, each of its own user.

    The clock stands still from here to the end of the test, so the pages say exactly how
    long ago and how soon, however slowly the test runs.
    """
    time_machine.move_to(time.time(), tick=False)
    specs: dict[str, dict[str, Any]] = {
        "uid_active": {"expires_in": 7200},
        "uid_soon": {"expires_in": 5 * 60 + 30},
        "uid_expired": {"expires_in": -3 * 3600 - 30, "refreshed_ago": 5 * 3600},
        "uid_flagged": {"expires_in": 7200, "status": "reauth_required"},
        "uid_stranded": {"expires_in": -60, "refresh_token": False},
    }
    made = {}
    for number, (uid, options) in enumerate(specs.items()):
        user = django_user_model.objects.create_user(
            f"user{number}", email=f"person{number}@example.org", password="a-long-password-1"
        )
        made[uid] = make_association(user, uid, **options)
    return made


def test_list_shows_token_health_at_a_glance(admin_client, health_rows):
    content = admin_client.get(LIST_URL).content.decode()

    active = row_of(content, "uid_active")
    assert "custodian-active" in active and ">Active<" in active
    assert "in 2 hours" in active or "in 1 hour" in active
    assert "never" in active  # not refreshed since connected
    soon = row_of(content, "uid_soon")
    assert ">Expiring soon<" in soon and "in 5 minutes" in soon
    expired = row_of(content, "uid_expired")
    assert ">Expired but refreshable<" in expired and "expired 3 hours ago" in expired
    assert "5 hours ago" in expired  # last refreshed
    assert ">Reauth required<" in row_of(content, "uid_flagged")
    assert ">Reauth required<" in row_of(content, "uid_stranded")  # expired, no refresh token
    assert "user0" in active and "demo" in active
    assert "css/custodian-admin.css" in content
    # Trouble first by default.
    order = uids_in_order(content, health_rows)
    assert order.index("uid_flagged") < order.index("uid_expired") < order.index("uid_soon")
    assert order[-1] == "uid_active"


def test_expiring_soon_follows_the_setting(admin_client, health_rows, settings):
    settings.CUSTODIAN_EXPIRING_SOON = 3 * 3600
    content = admin_client.get(LIST_URL).content.decode()
    assert ">Expiring soon<" in row_of(content, "uid_active")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", {"uid_active"}),
        ("expiring_soon", {"uid_soon"}),
        ("expired_refreshable", {"uid_expired"}),
        ("reauth_required", {"uid_flagged", "uid_stranded"}),
    ],
)
def test_filter_by_status(admin_client, health_rows, status, expected):
    content = admin_client.get(LIST_URL, {"status": status}).content.decode()
    assert set(uids_in_order(content, health_rows)) == expected


def test_filter_by_provider_and_search(admin_client, health_rows, django_user_model):
    monzo_user = django_user_model.objects.create_user("mona", email="mona@bank.example")
    make_association(monzo_user, "uid_monzo", provider="monzo")
    every = [*health_rows, "uid_monzo"]

    def shown(**params):
        return set(uids_in_order(admin_client.get(LIST_URL, params).content.decode(), every))

    assert shown(provider__exact="monzo") == {"uid_monzo"}
    assert shown(provider__exact="demo") == set(health_rows)
    assert shown(q="mona@bank.example") == {"uid_monzo"}  # e-mail
    assert shown(q="user2") == {"uid_expired"}  # username
    assert shown(q="uid_flagged") == {"uid_flagged"}  # uid
    assert shown(q="nobody-has-this") == set()


def test_sort_by_expiry_and_last_refreshed(admin_client, health_rows):
    columns = ["action_checkbox", *AssociationAdmin.list_display]
    expiry = columns.index("expires_in")
    refreshed = columns.index("last_refreshed")

    ascending = uids_in_order(
        admin_client.get(LIST_URL, {"o": expiry}).content.decode(), health_rows
    )
    assert ascending[:3] == ["uid_expired", "uid_stranded", "uid_soon"]
    descending = uids_in_order(
        admin_client.get(LIST_URL, {"o": f"-{expiry}"}).content.decode(), health_rows
    )
    assert descending[-3:] == ["uid_soon", "uid_stranded", "uid_expired"]
    by_refresh = uids_in_order(
        admin_client.get(LIST_URL, {"o": refreshed}).content.decode(), health_rows
    )
    assert by_refresh[0] == "uid_expired"  # the only one ever refreshed; never-refreshed last


def test_list_queries_do_not_grow_with_rows(admin_client, django_user_model):
    def make(count: int, offset: int) -> None:
        for number in range(offset, offset + count):
            user = django_user_model.objects.create_user(f"bulk{number}", email=f"b{number}@x.org")
            make_association(
                user,
                f"bulk_{number}",
                expires_in=600 * (number % 7) - 1200,
                refreshed_ago=number * 60,
            )

    make(5, 0)
    admin_client.get(LIST_URL)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as five:
        response = admin_client.get(LIST_URL)
    assert response.status_code == 200 and "bulk_4" in response.content.decode()
    make(45, 5)
    with CaptureQueriesContext(connection) as fifty:
        response = admin_client.get(LIST_URL)
    content = response.content.decode()
    assert "bulk_49" in content and "bulk_0" in content
    assert len(fifty) == len(five), [query["sql"] for query in fifty.captured_queries]
    assert len(fifty) <= 10


def test_no_secret_on_any_page(admin_client, connected, provider):
    _, association = connected("demo")
    association.refresh_from_db()
    credentials = read_credentials(association.extra_data)
    assert "enc:" in raw_extra_data(association)  # stored encrypted, so there is ciphertext to leak
    secrets_ = [credentials.access_token, credentials.refresh_token]
    ciphertexts = [association.extra_data["access_token"], association.extra_data["refresh_token"]]

    pages = {
        "list": admin_client.get(LIST_URL),
        "change": admin_client.get(change_url(association)),
        "history": admin_client.get(EVENTS_URL),
        "event": admin_client.get(f"{EVENTS_URL}{CredentialEvent.objects.first().pk}/change/"),
        "object history": admin_client.get(f"{LIST_URL}{association.pk}/history/"),
        "confirmation": admin_client.get(f"{LIST_URL}{association.pk}/delete/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        content = response.content.decode()
        for secret in secrets_ + ciphertexts:
            assert secret not in content, name
        assert "enc:" not in content, name

    change = pages["change"].content.decode()
    assert f"fp {fingerprint(credentials.access_token)}" in change
    assert f"fp {fingerprint(credentials.refresh_token)}" in change
    assert f"•••••• (fp {fingerprint(credentials.access_token)})" in change  # redacted extra_data
    assert 'name="extra_data"' not in change  # the raw field is not a form field at all
    assert ">Active<" in change and "user_alice" in change
    assert 'name="_save"' not in change  # read-only: no save button that could write stale tokens


def test_change_page_history_is_read_only_newest_first_and_capped(admin_client, django_user_model):
    user = django_user_model.objects.create_user("hist")
    association, _ = make_association(user, "uid_hist")
    for number in range(55):
        record_event(association, CredentialEvent.Kind.REFRESHED, detail=f"event-{number:02d}")

    content = admin_client.get(change_url(association)).content.decode()

    assert "event-54" in content and "event-05" in content
    assert "event-04" not in content  # the 50 newest only
    assert content.index("event-54") < content.index("event-30") < content.index("event-05")
    assert "Showing the 50 newest of 55 events" in content
    assert f"{EVENTS_URL}?association__id__exact={association.pk}" in content
    assert 'name="credential_events-0-detail"' not in content  # no editable inline field
    all_of_them = admin_client.get(EVENTS_URL, {"association__id__exact": association.pk})
    assert "event-04" in all_of_them.content.decode()


def test_event_admin_is_read_only(admin_client, django_user_model):
    user = django_user_model.objects.create_user("ev")
    association, _ = make_association(user, "uid_ev")
    event = record_event(association, CredentialEvent.Kind.CONNECTED, detail="hello")

    assert admin_client.get(f"{EVENTS_URL}add/").status_code == 403
    page = admin_client.get(f"{EVENTS_URL}{event.pk}/change/").content.decode()
    assert "hello" in page and 'name="_save"' not in page
    listing = admin_client.get(EVENTS_URL).content.decode()
    assert "delete_selected" not in listing
    admin_client.post(f"{EVENTS_URL}{event.pk}/delete/", {"post": "yes"})
    assert CredentialEvent.objects.filter(pk=event.pk).exists()


def action(client: Client, name: str, *associations, **extra):
    return client.post(
        LIST_URL,
        {"action": name, "_selected_action": [a.pk for a in associations], "index": 0, **extra},
    )


@pytest.mark.parametrize("outcome", ["refreshed", "reauth", "failed"])
def test_refresh_now_action(admin_client, admin_user, connected, provider, outcome):
    _, association = connected("demo")
    before = read_credentials(UserSocialAuth.objects.get(pk=association.pk).extra_data)
    if outcome == "reauth":
        provider.revoke_grant("alice")
    elif outcome == "failed":
        provider.fault("server_error")

    response = action(admin_client, "refresh_now", association)

    assert response.status_code == 302
    messages = texts(response)
    assert len(messages) == 1 and "user_alice" in messages[0]
    after = read_credentials(UserSocialAuth.objects.get(pk=association.pk).extra_data)
    kinds = set(
        CredentialEvent.objects.filter(association=association).values_list("kind", flat=True)
    )
    if outcome == "refreshed":
        assert provider.stats()["refresh_ok"] == 1
        assert after.access_token != before.access_token
        assert f"refreshed, new access token fp {fingerprint(after.access_token)}" in messages[0]
        assert "refreshed" in kinds
    elif outcome == "reauth":
        assert "reauth required (invalid_grant)" in messages[0]
        assert after.status == "reauth_required" and "reauth_required" in kinds
    else:
        assert "refresh failed (unavailable)" in messages[0]
        assert after.access_token == before.access_token and "refresh_failed" in kinds
    assert LogEntry.objects.filter(
        object_id=str(association.pk), action_flag=CHANGE, user_id=admin_user.pk
    ).exists()


def test_refresh_button_on_the_change_page(admin_client, connected, provider):
    _, association = connected("demo")
    page = admin_client.get(change_url(association)).content.decode()
    assert f"{LIST_URL}{association.pk}/refresh/" in page

    assert admin_client.get(f"{LIST_URL}{association.pk}/refresh/").status_code == 405
    response = admin_client.post(f"{LIST_URL}{association.pk}/refresh/")

    assert response.status_code == 302 and response["Location"] == change_url(association)
    assert provider.stats()["refresh_ok"] == 1


@pytest.mark.parametrize("backend", ["demo", "monzo"])
def test_revoke_and_disconnect_asks_first_then_revokes(
    admin_client, admin_user, connected, provider, backend
):
    _user, association = connected(backend)

    confirm = action(admin_client, "revoke_and_disconnect", association)

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Yes, revoke and disconnect" in page and "user_alice" in page
    assert "no password and no other connected account" in page  # alice only logs in this way
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()
    assert provider.stats()["revoke_calls"] + provider.stats()["logout_calls"] == 0

    done = action(admin_client, "revoke_and_disconnect", association, post="yes")

    assert done.status_code == 302
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    assert provider.stats()["revoke_calls" if backend == "demo" else "logout_calls"] == 1
    events = list(
        CredentialEvent.objects.filter(uid="user_alice", provider=backend)
        .order_by("pk")
        .values_list("kind", "actor_id", "detail")
    )
    assert events[-2:] == [
        ("revoked", admin_user.pk, ""),
        ("disconnected", admin_user.pk, "from the admin"),
    ]
    assert "revoked at" in texts(done)[0]
    assert LogEntry.objects.filter(
        object_id=str(association.pk), action_flag=DELETION, user_id=admin_user.pk
    ).exists()


def test_failed_revocation_still_disconnects_and_says_so(admin_client, connected, settings):
    _, association = connected("demo")
    settings.CUSTODIAN_PROVIDERS["demo"]["revocation_url"] = "http://127.0.0.1:9/revoke"

    done = action(admin_client, "revoke_and_disconnect", association, post="yes")

    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    assert "revocation at Demo provider failed (connection_failed)" in texts(done)[0]
    revoked = CredentialEvent.objects.get(kind="revoked")
    assert "revocation failed (connection_failed)" in revoked.detail


def test_delete_from_the_change_page_is_revoke_and_disconnect(admin_client, connected, provider):
    _, association = connected("demo")
    delete_url = f"{LIST_URL}{association.pk}/delete/"

    confirm = admin_client.get(delete_url)
    assert "Yes, revoke and disconnect" in confirm.content.decode()
    admin_client.post(delete_url, {"post": "yes"})

    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()
    assert provider.stats()["revoke_calls"] == 1
    assert CredentialEvent.objects.filter(kind="disconnected", uid="user_alice").exists()


def test_builtin_bulk_delete_is_not_offered(admin_client, health_rows):
    content = admin_client.get(LIST_URL).content.decode()
    assert 'value="delete_selected"' not in content
    assert 'value="refresh_now"' in content and 'value="revoke_and_disconnect"' in content


# --- Connect from the admin -----------------------------------------------------------------------


def pk_of(username: str) -> int:
    """The connect form's user field takes the user's id (what the autocomplete sends)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username).pk


def start_connect(client: Client, provider, backend: str, username: str):
    provider.add_redirect_uri(f"custodian-{backend}", callback_url(backend))
    response = client.post(ADD_URL, {"provider": backend, "user": pk_of(username)})
    assert response.status_code == 302, response.content[:800]
    return response["Location"]


@pytest.mark.parametrize("backend", ["demo", "monzo"])
def test_connect_from_the_admin(admin_client, admin_user, provider, django_user_model, backend):
    bob = django_user_model.objects.create_user("bob", password="a-long-password-1")
    form = admin_client.get(ADD_URL).content.decode()
    assert 'value="demo"' in form and 'value="monzo"' in form
    assert f'<option value="{admin_user.pk}" selected>admin</option>' in form  # the admin himself
    assert 'class="admin-autocomplete"' in form
    assert callback_url(backend) in form  # tells which redirect URI to register

    authorize = start_connect(admin_client, provider, backend, "bob")
    assert authorize.startswith(provider.base_url)
    query = parse_qs(urlsplit(authorize).query)
    assert query["redirect_uri"] == [callback_url(backend)] and query["state"]
    callback = urlsplit(provider.authorize(authorize, username="alice"))
    assert callback.path == urlsplit(callback_url(backend)).path

    response = admin_client.get(f"{callback.path}?{callback.query}")

    association = UserSocialAuth.objects.get(provider=backend, uid="user_alice")
    assert association.user == bob
    assert response.status_code == 302 and response["Location"] == change_url(association)
    assert admin_client.session["_auth_user_id"] == str(admin_user.pk)  # still the admin
    assert "enc:" in raw_extra_data(association)
    assert read_credentials(association.extra_data).access_token
    event = CredentialEvent.objects.get(association=association, kind="connected")
    assert event.actor == admin_user and event.user == bob
    entry = LogEntry.objects.get(object_id=str(association.pk), action_flag=ADDITION)
    assert entry.user == admin_user
    shown = texts(response)
    assert any("Connected" in message and "to bob" in message for message in shown)
    assert not any("is connected" in message for message in shown)  # one message, the admin's
    assert admin_client.get(response["Location"]).status_code == 200

    # The same answer again is refused: the state was used up.
    again = admin_client.get(f"{callback.path}?{callback.query}")
    assert again["Location"] == ADD_URL
    assert "state check failed" in texts(again)[0]
    assert UserSocialAuth.objects.count() == 1


@pytest.mark.parametrize(
    "failure", ["access_denied", "bad_state", "provider_down", "linked_to_someone_else"]
)
def test_connect_failures_come_back_as_messages(admin_client, provider, django_user_model, failure):
    if failure == "linked_to_someone_else":
        owner = django_user_model.objects.create_user("owner")
        make_association(owner, "user_alice")
    authorize = start_connect(admin_client, provider, "demo", "admin")
    if failure == "provider_down":
        provider.fault("server_error", grant_type="authorization_code")
    allow = failure != "access_denied"
    callback = urlsplit(provider.authorize(authorize, username="alice", allow=allow))
    query = callback.query
    if failure == "bad_state":
        query = re.sub(r"state=[^&]+", "state=forged", query)

    response = admin_client.get(f"{callback.path}?{query}")

    assert response.status_code == 302 and response["Location"] == ADD_URL
    message = texts(response)[0]
    expected = {
        "access_denied": "access was declined at Demo provider",
        "bad_state": "state check failed",
        "provider_down": "Demo provider is having trouble",
        "linked_to_someone_else": "already linked to another user",
    }[failure]
    assert expected in message and "Nothing was connected" in message
    assert not UserSocialAuth.objects.exclude(user__username="owner").exists()
    assert admin_client.get(ADD_URL).status_code == 200


def test_connect_form_validates(admin_client, settings):
    for nobody in ("nobody", "987654321"):
        response = admin_client.post(ADD_URL, {"provider": "demo", "user": nobody})
        assert response.status_code == 200
        assert "That user does not exist." in response.content.decode()
    settings.MONZO_CLIENT_ID = ""  # not configured: not offered
    form = admin_client.get(ADD_URL).content.decode()
    assert 'value="monzo"' not in form and 'value="demo"' in form
    refused = admin_client.post(ADD_URL, {"provider": "monzo", "user": pk_of("admin")})
    assert refused.status_code == 200


def test_the_add_button_says_connect(admin_client):
    content = admin_client.get(LIST_URL).content.decode()
    assert f'href="{ADD_URL}"' in content and "Connect an account" in content


# --- Permissions --------------------------------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    def _staff(*codenames: str) -> Client:
        user = django_user_model.objects.create_user(
            f"staff{secrets.token_hex(3)}", password="a-long-password-1", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client = Client()
        client.force_login(user)
        return client

    return _staff


def test_staff_without_permission_sees_nothing(staff, connected):
    _, association = connected("demo")
    client = staff()

    index = client.get("/admin/").content.decode()
    assert "usersocialauth" not in index and "credentialevent" not in index
    for url in (
        LIST_URL,
        ADD_URL,
        change_url(association),
        f"{LIST_URL}{association.pk}/delete/",
        f"{LIST_URL}connect/complete/demo/?state=x&code=y",
        EVENTS_URL,
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(f"{LIST_URL}{association.pk}/refresh/").status_code == 403


def test_actions_need_their_permissions(staff, connected, provider):
    _, association = connected("demo")
    viewer = staff("view_usersocialauth")
    listing = viewer.get(LIST_URL).content.decode()
    assert "user_alice" in listing
    assert 'value="refresh_now"' not in listing and 'value="revoke_and_disconnect"' not in listing
    assert "Refresh now" not in viewer.get(change_url(association)).content.decode()

    action(viewer, "refresh_now", association)
    action(viewer, "revoke_and_disconnect", association, post="yes")
    assert viewer.post(f"{LIST_URL}{association.pk}/refresh/").status_code == 403
    assert viewer.post(f"{LIST_URL}{association.pk}/delete/", {"post": "yes"}).status_code == 403
    connect_form = {"provider": "demo", "user": association.user_id}
    assert viewer.post(ADD_URL, connect_form).status_code == 403

    assert provider.stats()["token_calls"]["refresh_token"] == 0
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()

    changer = staff("view_usersocialauth", "change_usersocialauth")
    listing = changer.get(LIST_URL).content.decode()
    assert 'value="refresh_now"' in listing and 'value="revoke_and_disconnect"' not in listing
    action(changer, "revoke_and_disconnect", association, post="yes")
    assert UserSocialAuth.objects.filter(pk=association.pk).exists()


# --- Retention ------------------------------------------------------------------------------------


def test_prune_credential_events(django_user_model, settings):
    user = django_user_model.objects.create_user("old")
    association, _ = make_association(user, "uid_old")
    ages = {"ancient": 400, "old": 100, "recent": 2}
    for detail, days in ages.items():
        event = record_event(association, CredentialEvent.Kind.REFRESHED, detail=detail)
        CredentialEvent.objects.filter(pk=event.pk).update(
            created=timezone.now() - timedelta(days=days)
        )

    def run(*args: str) -> str:
        out = StringIO()
        call_command("prune_credential_events", *args, stdout=out)
        return out.getvalue()

    def left() -> set[str]:
        return set(CredentialEvent.objects.values_list("detail", flat=True))

    assert "Would delete 2 credential events older than 30 days" in run("--days", "30", "--dry-run")
    assert left() == set(ages)
    assert "Deleted 1 credential events older than 365 days" in run()  # the setting's default
    assert left() == {"old", "recent"}
    settings.CUSTODIAN_EVENT_RETENTION_DAYS = 50
    assert "Deleted 1 " in run("--batch-size", "1")
    assert left() == {"recent"}
    with pytest.raises(Exception, match="at least 1 day"):
        run("--days", "0")


def test_expiry_phrases():
    from datetime import datetime

    from integrations.admin.health import expires_phrase

    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def phrase(seconds: int) -> str:
        return expires_phrase(now + timedelta(seconds=seconds), now).replace("\xa0", " ")

    assert phrase(42 * 60 + 5) == "in 42 minutes"
    assert phrase(-3 * 3600 - 100) == "expired 3 hours ago"
    assert phrase(30) == "in under a minute"
    assert phrase(-5) == "expired just now"
    assert expires_phrase(None, now) == "no expiry"


def test_users_are_in_the_admin_with_their_signup_provider(admin_client, connected):
    user, _ = connected()
    content = admin_client.get("/admin/integrations/user/").content.decode()
    assert user.username in content
    assert "demo" in content


def test_prune_runs_daily_from_celery_beat(settings, django_user_model, connected):
    from datetime import timedelta

    from django.utils import timezone

    from integrations.background.tasks import prune_credential_events
    from integrations.models import CredentialEvent

    schedule = settings.CELERY_BEAT_SCHEDULE["prune-credential-events"]
    assert schedule["task"] == "integrations.tasks.prune_credential_events"
    _, association = connected()
    old = CredentialEvent.objects.filter(association=association).first()
    CredentialEvent.objects.filter(pk=old.pk).update(
        created=timezone.now() - timedelta(days=settings.CUSTODIAN_EVENT_RETENTION_DAYS + 1)
    )
    prune_credential_events()
    assert not CredentialEvent.objects.filter(pk=old.pk).exists()


# --- Connecting for another user: no escalation -----------------------------------------------

REFUSED = "Refused: connect an account for this user"


def grant(user, *perms: str) -> None:
    """Give `user` the permissions named "app_label.codename"."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


@pytest.fixture
def staff_user(django_user_model):
    """`staff_user(name, *perms)`: a staff user with exactly those permissions, and a client
    logged in as them."""

    def _make(username: str, *perms: str):
        user = django_user_model.objects.create_user(
            username, password="a-long-password-1", is_staff=True
        )
        grant(user, *perms)
        client = Client()
        client.force_login(user)
        return user, client

    return _make


@pytest.fixture
def root(django_user_model):
    """A superuser other than the test's admin: the prize of an escalation."""
    return django_user_model.objects.create_superuser("root", password="a-long-password-1")


def assert_refused_and_recorded(caplog, admin, target, stage: str) -> None:
    """One WARNING naming both ids, and one admin-log entry against the target user."""
    records = [
        record
        for record in caplog.records
        if record.name.startswith("integrations.admin")
        and record.levelname == "WARNING"
        and "refused" in record.getMessage()
    ]
    assert len(records) == 1, [record.getMessage() for record in records]
    message = records[0].getMessage()
    assert f"at the {stage}" in message
    assert f"admin user {admin.pk} " in message and f"for user {target.pk}:" in message
    entries = LogEntry.objects.filter(
        user=admin,
        action_flag=CHANGE,
        content_type__app_label="integrations",
        content_type__model="user",
        object_id=str(target.pk),
    )
    assert entries.count() == 1
    assert entries.get().change_message.startswith(REFUSED)


def assert_nothing_connected(client: Client, users_before: int, django_user_model) -> None:
    assert not UserSocialAuth.objects.exists()
    assert not CredentialEvent.objects.exists()
    assert django_user_model.objects.count() == users_before
    assert not client.session.get(PENDING_SESSION_KEY)


ADDER = ("social_django.add_usersocialauth", "social_django.view_usersocialauth")
USER_CHANGER = (*ADDER, "integrations.change_user", "integrations.view_user")


@pytest.mark.parametrize("target", ["superuser", "ordinary user"])
def test_adder_without_change_user_may_not_connect_for_others(
    staff_user, root, django_user_model, provider, caplog, target
):
    mallory, client = staff_user("mallory", *ADDER)
    victim = root if target == "superuser" else django_user_model.objects.create_user("bob")
    users_before = django_user_model.objects.count()

    response = client.post(ADD_URL, {"provider": "demo", "user": victim.pk})

    assert response.status_code == 200  # the form again, not the provider
    page = response.content.decode()
    assert f"You may not connect an account for {victim.username}: " in page
    assert "requires the permission to change users" in page
    assert provider.stats()["token_calls"]["authorization_code"] == 0
    assert_nothing_connected(client, users_before, django_user_model)
    assert_refused_and_recorded(caplog, mallory, victim, "form")


def test_connecting_for_oneself_needs_only_the_add_permission(staff_user, provider):
    mallory, client = staff_user("mallory", *ADDER)
    authorize = start_connect(client, provider, "demo", "mallory")
    callback = urlsplit(provider.authorize(authorize, username="carol"))

    client.get(f"{callback.path}?{callback.query}")

    assert UserSocialAuth.objects.get(uid="user_carol").user == mallory


def test_target_with_a_permission_the_admin_lacks_is_refused(staff_user, django_user_model, caplog):
    admin, client = staff_user("helpdesk", *USER_CHANGER)
    target = django_user_model.objects.create_user("dora")
    grant(target, "integrations.delete_user")

    response = client.post(ADD_URL, {"provider": "demo", "user": target.pk})

    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "You may not connect an account for dora: they have permissions you do not have "
        "(integrations.delete_user)" in page
    )
    assert not UserSocialAuth.objects.exists()
    assert_refused_and_recorded(caplog, admin, target, "form")


def test_user_changer_may_not_connect_for_a_superuser(staff_user, django_user_model, caplog):
    admin, client = staff_user("helpdesk", *USER_CHANGER)
    target = django_user_model.objects.create_superuser("dora")

    response = client.post(ADD_URL, {"provider": "demo", "user": target.pk})

    assert response.status_code == 200
    assert "they are a superuser and you are not" in response.content.decode()
    assert_refused_and_recorded(caplog, admin, target, "form")


def test_user_changer_may_connect_for_a_user_with_fewer_rights(
    staff_user, django_user_model, provider
):
    admin, client = staff_user("helpdesk", *USER_CHANGER)
    target = django_user_model.objects.create_user("dora")
    grant(target, "social_django.view_usersocialauth")

    authorize = start_connect(client, provider, "demo", "dora")
    callback = urlsplit(provider.authorize(authorize, username="alice"))
    response = client.get(f"{callback.path}?{callback.query}")

    association = UserSocialAuth.objects.get(provider="demo", uid="user_alice")
    assert association.user == target
    assert response.status_code == 302 and response["Location"] == change_url(association)
    assert client.session["_auth_user_id"] == str(admin.pk)
    entry = LogEntry.objects.get(object_id=str(association.pk), action_flag=ADDITION)
    assert entry.user == admin
    assert f"for user dora (id {target.pk})" in entry.change_message
    assert not LogEntry.objects.filter(change_message__startswith=REFUSED).exists()


def test_superuser_may_connect_for_another_superuser(admin_client, root, provider):
    authorize = start_connect(admin_client, provider, "demo", "root")
    callback = urlsplit(provider.authorize(authorize, username="alice"))
    response = admin_client.get(f"{callback.path}?{callback.query}")

    association = UserSocialAuth.objects.get(provider="demo", uid="user_alice")
    assert association.user == root
    assert response["Location"] == change_url(association)
    assert "for user root" in LogEntry.objects.get(action_flag=ADDITION).change_message


@pytest.mark.parametrize("tampering", ["target_promoted", "session_edited"])
def test_callback_checks_again(staff_user, django_user_model, root, provider, caplog, tampering):
    admin, client = staff_user("helpdesk", *USER_CHANGER)
    target = django_user_model.objects.create_user("dora")
    users_before = django_user_model.objects.count()
    authorize = start_connect(client, provider, "demo", "dora")
    callback = urlsplit(provider.authorize(authorize, username="carol"))
    if tampering == "target_promoted":
        target.is_superuser = True
        target.save()
        refused_for = target
    else:
        session = client.session
        pending = session[PENDING_SESSION_KEY]
        for entry in pending.values():
            entry["user_id"] = root.pk
        session[PENDING_SESSION_KEY] = pending
        session.save()
        refused_for = root
    caplog.clear()

    response = client.get(f"{callback.path}?{callback.query}")

    assert response.status_code == 302 and response["Location"] == ADD_URL
    message = texts(response)[0]
    assert f"you may not connect an account for {refused_for.username}" in message
    assert "they are a superuser and you are not" in message
    assert "Nothing was connected" in message
    assert provider.stats()["token_calls"]["authorization_code"] == 0  # the code was not used
    assert_nothing_connected(client, users_before, django_user_model)
    assert_refused_and_recorded(caplog, admin, refused_for, "callback")


def test_the_escalation_through_log_in_with_demo_fails(
    staff_user, django_user_model, root, provider, caplog
):
    """Mallory may add associations only. She tries to link her own provider account (carol)
    to root, by the form and by editing her session, then logs in with it."""
    mallory, attacker = staff_user("mallory", *ADDER)
    provider.add_redirect_uri("custodian-demo", callback_url("demo"))

    def follow(location: str) -> None:
        callback = urlsplit(provider.authorize(location, username="carol"))
        attacker.get(f"{callback.path}?{callback.query}")

    # 1. The form, naming root.
    response = attacker.post(ADD_URL, {"provider": "demo", "user": root.pk})
    if response.status_code == 302:
        follow(response["Location"])
    # 2. The form for herself, then the pending entry pointed at root.
    response = attacker.post(ADD_URL, {"provider": "demo", "user": mallory.pk})
    session = attacker.session
    for entry in session[PENDING_SESSION_KEY].values():
        entry["user_id"] = root.pk
    session.save()
    follow(response["Location"])

    # 3. "Log in with demo" as carol, in a fresh browser.
    browser = Client()
    login = connect(browser, provider, "demo", username="carol")

    assert login.status_code == 302
    logged_in = django_user_model.objects.get(pk=browser.session["_auth_user_id"])
    assert logged_in != root and not logged_in.is_superuser and not logged_in.is_staff
    assert not UserSocialAuth.objects.filter(user=root).exists()
    refusals = LogEntry.objects.filter(user=mallory, object_id=str(root.pk))
    assert refusals.count() == 2
    assert all(entry.change_message.startswith(REFUSED) for entry in refusals)
