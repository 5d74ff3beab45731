"""The admin index's sections (integrations/admin_site.py, integrations/admin/openid.py):
associations under "Connected accounts", Python Social Auth's OpenID 1/2 tables only on a
site that uses OpenID 1/2, and every association URL where it always was."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.test_admin import make_association

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/social_django/usersocialauth/"
OPENID_URLS = ("/admin/social_django/association/", "/admin/social_django/nonce/")
STEAM = "social_core.backends.steam.SteamOpenId"  # an OpenID 1/2 backend


def sections(html: str) -> dict[str, list[tuple[str, str]]]:
    """Each section of an admin index page, by its caption: its rows' (name, link)."""
    found = {}
    for module in re.findall(r'<div class="app-[^"]+ module.*?</table>', html, re.S):
        caption = re.search(r'class="section"[^>]*>([^<]+)</a>', module)
        assert caption, module[:300]
        rows = re.findall(r'<th scope="row"[^>]*>\s*<a href="([^"]+)"[^>]*>([^<]+)</a>', module)
        found[caption.group(1)] = [(name, url) for url, name in rows]
    return found


def test_associations_are_in_connected_accounts(admin_client):
    index = sections(admin_client.get("/admin/").content.decode())

    assert index["Connected accounts"] == [
        ("Associations", LIST_URL),
        ("Credential events", "/admin/integrations/credentialevent/"),
        ("Users", "/admin/integrations/user/"),
    ]
    assert "Python Social Auth" not in index
    assert set(index) == {"Authentication and Authorization", "Connected accounts"}


def test_openid_tables_are_hidden_without_openid(admin_client):
    page = admin_client.get("/admin/").content.decode()
    for url in OPENID_URLS:
        assert url not in page
        assert admin_client.get(url).status_code == 403
    # The navigation sidebar of any admin page lists the same sections.
    listing = admin_client.get(LIST_URL).content.decode()
    assert not any(url in listing for url in OPENID_URLS)


def test_openid_tables_are_shown_with_an_openid_backend(admin_client, enable_backends):
    enable_backends(STEAM)

    index = sections(admin_client.get("/admin/").content.decode())

    assert index["Python Social Auth"] == [
        ("OpenID associations", OPENID_URLS[0]),
        ("OpenID nonces", OPENID_URLS[1]),
    ]
    assert ("Associations", LIST_URL) in index["Connected accounts"]
    for url in OPENID_URLS:
        assert admin_client.get(url).status_code == 200


def test_app_pages_keep_working(admin_client, django_user_model):
    association, _ = make_association(django_user_model.objects.create_user("ann"), "uid_ann")

    social = admin_client.get("/admin/social_django/").content.decode()
    assert "<h1>Connected accounts administration</h1>" in social
    assert sections(social) == {"Connected accounts": sections(social)["Connected accounts"]}
    assert ("Associations", LIST_URL) in sections(social)["Connected accounts"]
    own = admin_client.get("/admin/integrations/").content.decode()
    assert ("Associations", LIST_URL) in sections(own)["Connected accounts"]

    crumbs = '<a href="/admin/integrations/">Connected accounts</a>'
    listing = admin_client.get(LIST_URL).content.decode()
    assert crumbs in listing and "<h1>Select association to change</h1>" in listing
    change = admin_client.get(f"{LIST_URL}{association.pk}/change/").content.decode()
    assert crumbs in change and "<h1>Change association</h1>" in change
    assert f'<a href="{LIST_URL}">Associations</a>' in change
    history = admin_client.get(f"{LIST_URL}{association.pk}/history/").content.decode()
    assert crumbs in history and "Python Social Auth" not in history
    for page in (listing, change, history, admin_client.get(f"{LIST_URL}add/").content.decode()):
        assert "Python Social Auth" not in page


def test_a_viewer_of_associations_only_gets_the_section_too(django_user_model):
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_usersocialauth"))
    client = Client()
    client.force_login(viewer)

    assert sections(client.get("/admin/").content.decode()) == {
        "Connected accounts": [("Associations", LIST_URL)]
    }
    assert client.get("/admin/integrations/").status_code == 200
    assert client.get("/admin/social_django/").status_code == 200
    assert client.get("/admin/auth/").status_code == 404
