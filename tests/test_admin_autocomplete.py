"""Picking the user in "Connect an account": the admin's autocomplete lists exactly the users
the connect policy lets the admin act for (integrations/admin/connect_policy.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from integrations.admin.connect_policy import connectable_users, may_connect_for
from tests.test_admin_connect_policy import ADD, CHANGE_USER, DELETE_USER, VIEW_USER, perm, user

pytestmark = pytest.mark.django_db

AUTOCOMPLETE = "/admin/autocomplete/"
SOURCE = {"app_label": "social_django", "model_name": "usersocialauth", "field_name": "user"}


@pytest.fixture
def people(django_user_model):
    """Users holding every kind of right, each a possible target."""
    deleters = Group.objects.create(name="deleters")
    deleters.permissions.add(perm(*DELETE_USER))
    viewers = Group.objects.create(name="viewers")
    viewers.permissions.add(perm(*VIEW_USER))
    made = {
        "plain": user(django_user_model, "plain", email="plain@example.org"),
        "dora": user(django_user_model, "dora", first_name="Dora", email="dora@example.org"),
        "staff": user(django_user_model, "staffer", is_staff=True),
        "deleter": user(django_user_model, "deleter", DELETE_USER),
        "dormant": user(django_user_model, "dormant", DELETE_USER, is_active=False),
        "root": django_user_model.objects.create_superuser("root", "root@example.org"),
        "in_deleters": user(django_user_model, "in_deleters"),
        "in_viewers": user(django_user_model, "in_viewers"),
    }
    made["in_deleters"].groups.add(deleters)
    made["in_viewers"].groups.add(viewers)
    return made


ADMINS = {
    "superuser": ((), {"is_superuser": True, "is_staff": True}),
    "adder": ((ADD, VIEW_USER), {"is_staff": True}),
    "helpdesk": ((ADD, VIEW_USER, CHANGE_USER), {"is_staff": True}),
    "helpdesk_deleter": ((ADD, VIEW_USER, CHANGE_USER, DELETE_USER), {"is_staff": True}),
    "no_add": ((VIEW_USER, CHANGE_USER), {"is_staff": True}),
    "not_staff": ((ADD, VIEW_USER, CHANGE_USER), {}),
    "inactive": ((ADD, VIEW_USER, CHANGE_USER), {"is_staff": True, "is_active": False}),
}


@pytest.mark.parametrize("kind", sorted(ADMINS))
def test_the_query_agrees_with_the_rule(django_user_model, people, kind):
    perms, flags = ADMINS[kind]
    admin = user(django_user_model, f"admin_{kind}", *perms, **flags)
    everyone = django_user_model.objects.all()

    listed = set(connectable_users(admin, everyone).values_list("username", flat=True))

    allowed = {target.username for target in everyone if may_connect_for(admin, target) is None}
    assert listed == allowed
    # The rule is not trivial for any of them: someone is always left out.
    assert listed != set(everyone.values_list("username", flat=True)) or kind == "superuser"


def search(client: Client, term: str = "", **source) -> tuple[int, set[str]]:
    response = client.get(AUTOCOMPLETE, {**SOURCE, **source, "term": term})
    if response.status_code != 200:
        return response.status_code, set()
    return 200, {result["text"] for result in response.json()["results"]}


def logged_in(django_user_model, kind: str) -> Client:
    perms, flags = ADMINS[kind]
    client = Client()
    client.force_login(user(django_user_model, f"admin_{kind}", *perms, **flags))
    return client


def test_helpdesk_finds_only_users_it_may_act_for(django_user_model, people):
    client = logged_in(django_user_model, "helpdesk")

    status, found = search(client)

    assert status == 200
    assert found == {"admin_helpdesk", "plain", "dora", "staffer", "in_viewers"}
    # Searching uses the user admin's search_fields: username, names, e-mail address.
    assert search(client, "dor")[1] == {"dora"}
    assert search(client, "Dora")[1] == {"dora"}
    assert search(client, "plain@example")[1] == {"plain"}
    # Whoever it may not act for stays unlisted, however precisely searched for.
    for name in ("root", "deleter", "dormant", "in_deleters", "root@example.org"):
        assert search(client, name)[1] == set(), name


def test_a_superuser_finds_everyone(django_user_model, people):
    status, found = search(logged_in(django_user_model, "superuser"))
    assert status == 200
    assert found == set(django_user_model.objects.values_list("username", flat=True))


def test_an_adder_finds_only_themself(django_user_model, people):
    status, found = search(logged_in(django_user_model, "adder"))
    assert (status, found) == (200, {"admin_adder"})


def test_without_viewing_users_there_is_no_search(django_user_model, people):
    """Connecting for oneself needs no user search: the form starts with the admin chosen."""
    client = Client()
    client.force_login(user(django_user_model, "only_add", ADD, is_staff=True))
    assert search(client)[0] == 403
    form = client.get("/admin/social_django/usersocialauth/add/").content.decode()
    assert ">only_add</option>" in form


def test_bad_autocomplete_requests_get_clear_answers(django_user_model, people):
    client = logged_in(django_user_model, "helpdesk")
    assert search(client, field_name="nonexistent")[0] == 403
    assert search(client, model_name="nothing")[0] == 403
    assert client.get(AUTOCOMPLETE, {"term": "x"}).status_code == 403
