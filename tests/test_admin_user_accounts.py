"""A user's admin page lists their connected accounts (integrations/admin/user_accounts.py)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from social_django.models import UserSocialAuth

from tests.test_admin import make_association

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/social_django/usersocialauth/"


def user_url(user) -> str:
    return f"/admin/integrations/user/{user.pk}/change/"


def account_rows(html: str) -> list[str]:
    group = re.search(r'id="social_auth-group".*?</fieldset>', html, re.S)
    assert group, "no connected accounts on the page"
    return re.findall(r'<tr class="form-row.*?</tr>', group.group(0), re.S)


def test_the_users_page_lists_their_accounts(admin_client, django_user_model, time_machine):
    time_machine.move_to("2026-03-12 01:05:00+00:00", tick=False)
    ann = django_user_model.objects.create_user("ann", password="a-long-password-1")
    active, active_tokens = make_association(ann, "uid_ok", expires_in=42 * 60)
    flagged, flagged_tokens = make_association(
        ann, "uid_bad", provider="monzo", status="reauth_required"
    )
    make_association(django_user_model.objects.create_user("bea"), "uid_other")

    page = admin_client.get(user_url(ann)).content.decode()

    heading = re.search(r'<h2 id="social_auth-heading"[^>]*>\s*(.*?)\s*</h2>', page, re.S)
    assert heading and heading.group(1) == "Connected accounts"
    first, second = (row.replace("\xa0", " ") for row in account_rows(page))
    # Trouble first, each with provider, uid, status, expiry and a link to the association.
    assert f'href="{LIST_URL}{flagged.pk}/change/">#{flagged.pk}</a>' in first
    assert "Monzo" in first and "uid_bad" in first and ">Reauth required<" in first
    assert f'href="{LIST_URL}{active.pk}/change/">#{active.pk}</a>' in second
    assert "Demo provider" in second and "uid_ok" in second and ">Active<" in second
    assert 'datetime="2026-03-12T01:47:00Z"' in second and ">in 42 minutes<" in second
    assert "uid_other" not in page
    for secret in (*active_tokens.values(), *flagged_tokens.values(), "enc:"):
        if isinstance(secret, str) and len(secret) > 8:
            assert secret not in page
    assert '<script src="/static/js/moments.js" defer></script>' in page


def test_saving_the_user_leaves_their_accounts_alone(admin_client, django_user_model):
    ann = django_user_model.objects.create_user("ann", password="a-long-password-1")
    association, _ = make_association(ann, "uid_ok")
    before = UserSocialAuth.objects.get(pk=association.pk).extra_data
    page = admin_client.get(user_url(ann)).content.decode()
    management = dict(re.findall(r'name="(social_auth-[A-Z_]+)"[^>]*value="(\d+)"', page))
    assert management["social_auth-TOTAL_FORMS"] == "1"

    response = admin_client.post(
        user_url(ann),
        {
            "username": "ann",
            "first_name": "Ann",
            "last_name": "",
            "email": "ann@example.org",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "social_auth-0-id": str(association.pk),
            "social_auth-0-user": str(ann.pk),
            **management,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    ann.refresh_from_db()
    assert ann.first_name == "Ann"
    assert UserSocialAuth.objects.get(pk=association.pk).extra_data == before


def test_no_accounts_without_the_right_to_view_them(django_user_model):
    ann = django_user_model.objects.create_user("ann")
    make_association(ann, "uid_ok")
    desk = django_user_model.objects.create_user("desk", is_staff=True)
    desk.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = Client()
    client.force_login(desk)

    page = client.get(user_url(ann)).content.decode()

    assert "ann" in page and "social_auth-group" not in page and "uid_ok" not in page
    desk.user_permissions.add(Permission.objects.get(codename="view_usersocialauth"))
    client.force_login(django_user_model.objects.get(pk=desk.pk))
    assert "uid_ok" in client.get(user_url(ann)).content.decode()


def test_not_on_the_add_user_page(admin_client):
    page = admin_client.get("/admin/integrations/user/add/").content.decode()
    assert "social_auth-group" not in page
