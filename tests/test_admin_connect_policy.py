"""The rule for connecting a provider account for someone from the admin, on its own."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from integrations.admin.connect_policy import may_connect_for

pytestmark = pytest.mark.django_db

ADD = ("social_django", "add_usersocialauth")
CHANGE_USER = ("integrations", "change_user")


def perm(app_label: str, codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def user(django_user_model, name: str, *perms: tuple[str, str], **flags):
    made = django_user_model.objects.create_user(name, **flags)
    made.user_permissions.set([perm(*p) for p in perms])
    return django_user_model.objects.get(pk=made.pk)  # no stale permission cache


def test_oneself_needs_only_the_add_permission(django_user_model):
    adder = user(django_user_model, "adder", ADD, is_staff=True)
    assert may_connect_for(adder, adder) is None
    nobody = user(django_user_model, "nobody", is_staff=True)
    assert may_connect_for(nobody, nobody) == "you may not add social associations"


def test_the_rule_for_others(django_user_model):
    adder = user(django_user_model, "adder", ADD, is_staff=True)
    changer = user(django_user_model, "changer", ADD, CHANGE_USER, is_staff=True)
    plain = user(django_user_model, "plain")
    root = django_user_model.objects.create_superuser("root")
    other_root = django_user_model.objects.create_superuser("other_root")

    assert "permission to change users" in may_connect_for(adder, plain)
    assert "permission to change users" in may_connect_for(adder, root)  # tells adder nothing
    assert may_connect_for(changer, plain) is None
    assert may_connect_for(changer, adder) is None  # staff, and a subset of changer's rights
    assert may_connect_for(changer, root) == "they are a superuser and you are not"
    assert may_connect_for(root, other_root) is None
    assert may_connect_for(root, changer) is None


def test_staff_and_extra_permissions(django_user_model):
    not_staff = user(django_user_model, "not_staff", ADD, CHANGE_USER)
    staff = user(django_user_model, "staff", is_staff=True)
    assert may_connect_for(not_staff, staff) == "they are staff and you are not"

    changer = user(django_user_model, "changer", ADD, CHANGE_USER, is_staff=True)
    group = Group.objects.create(name="deleters")
    group.permissions.add(perm("integrations", "delete_user"))
    via_group = user(django_user_model, "via_group")
    via_group.groups.add(group)
    assert may_connect_for(changer, via_group) == (
        "they have permissions you do not have (integrations.delete_user)"
    )
    many = user(
        django_user_model,
        "many",
        *[("integrations", f"{verb}_user") for verb in ("add", "delete", "view")],
        ("social_django", "delete_usersocialauth"),
    )
    assert may_connect_for(changer, many).endswith("and 1 more)")


def test_an_inactive_target_is_judged_as_if_active(django_user_model):
    """Reactivating them later must not turn the connection into an escalation."""
    changer = user(django_user_model, "changer", ADD, CHANGE_USER, is_staff=True)
    dormant = user(django_user_model, "dormant", ("integrations", "delete_user"), is_active=False)
    assert dormant.get_all_permissions() == set()  # what Django says for an inactive user
    assert "integrations.delete_user" in may_connect_for(changer, dormant)
    assert dormant.is_active is False


def test_an_inactive_admin_may_connect_nothing(django_user_model):
    root = django_user_model.objects.create_superuser("root", is_active=False)
    assert may_connect_for(root, root) == "you may not add social associations"


# --- The same rule in the user admin: "change user" must not be a way to become superuser ---

VIEW_USER = ("integrations", "view_user")
DELETE_USER = ("integrations", "delete_user")


@pytest.fixture
def helpdesk(client, django_user_model):
    """A staff member who may view, change and delete users, and nothing more."""
    desk = user(django_user_model, "helpdesk", VIEW_USER, CHANGE_USER, DELETE_USER, is_staff=True)
    desk.set_password("helpdesk password 1")
    desk.save()
    client.force_login(desk)
    return desk


def test_helpdesk_cannot_set_a_superusers_password(client, helpdesk, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root password 1")

    page = client.get(f"/admin/integrations/user/{root.pk}/password/")
    posted = client.post(
        f"/admin/integrations/user/{root.pk}/password/",
        {
            "password1": "taken over 12345",
            "password2": "taken over 12345",
            "usable_password": "true",
        },
    )

    assert page.status_code == 403 and posted.status_code == 403
    root.refresh_from_db()
    assert root.check_password("root password 1")


def test_helpdesk_cannot_make_itself_superuser(client, helpdesk):
    page = client.get(f"/admin/integrations/user/{helpdesk.pk}/change/")
    assert page.status_code == 200
    assert 'name="is_superuser"' not in page.content.decode()

    client.post(
        f"/admin/integrations/user/{helpdesk.pk}/change/",
        {
            "username": "helpdesk",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )

    helpdesk.refresh_from_db()
    assert not helpdesk.is_superuser


def test_helpdesk_cannot_delete_a_superuser(client, helpdesk, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root password 1")

    one = client.post(f"/admin/integrations/user/{root.pk}/delete/", {"post": "yes"})
    bulk = client.post(
        "/admin/integrations/user/",
        {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"},
    )

    assert one.status_code == 403 and bulk.status_code == 403
    assert django_user_model.objects.filter(pk=root.pk).exists()


def test_helpdesk_still_manages_ordinary_users(client, helpdesk, django_user_model):
    ordinary = django_user_model.objects.create_user("ordinary", password="old password 12")

    posted = client.post(
        f"/admin/integrations/user/{ordinary.pk}/password/",
        {
            "password1": "new password 1234",
            "password2": "new password 1234",
            "usable_password": "true",
        },
    )

    assert posted.status_code == 302
    ordinary.refresh_from_db()
    assert ordinary.check_password("new password 1234")
