"""Form errors are errors to a screen reader too, and logging out is confirmed (the pages as
served; tests/test_forms_browser.py shows them in a browser)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def error_list(content: str, field: str) -> str:
    match = re.search(
        rf'<ul class="errorlist" id="id_{field}_error" role="alert">(.*?)</ul>', content, re.S
    )
    assert match, content
    return match[1]


def test_password_validation_errors_are_announced_and_apart_from_the_help(
    client: Client, django_user_model
):
    user = django_user_model.objects.create_user("erin")
    client.force_login(user)

    content = client.post(
        "/account/password/", {"new_password1": "erin", "new_password2": "erin"}
    ).content.decode()

    errors = error_list(content, "new_password2")
    assert "This password is too short" in errors and "too similar to the username" in errors
    field = re.search(r'<input [^>]*name="new_password2"[^>]*>', content)
    assert field and 'aria-invalid="true"' in field[0]
    assert re.search(r'aria-describedby="[^"]*\bid_new_password2_error\b', field[0])
    first = re.search(r'<input [^>]*name="new_password1"[^>]*>', content)
    assert first and "aria-invalid" not in first[0]
    help_text = re.search(r'<div class="helptext" id="id_new_password1_helptext">(.*?)</div>',
                          content, re.S)
    assert help_text and "at least 8 characters" in help_text[0]
    assert "too short" not in help_text[0]  # the help states rules; only the error says why
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_a_wrong_login_password_is_an_announced_error(client: Client, django_user_model):
    django_user_model.objects.create_user("frank", password="a-long-password-1")

    content = client.post(
        "/login/", {"username": "frank", "password": "not it"}
    ).content.decode()

    match = re.search(r'<ul class="errorlist nonfield" role="alert">(.*?)</ul>', content, re.S)
    assert match and "correct username and password" in match[1]


def test_logging_out_says_so_once(client: Client, django_user_model):
    client.force_login(django_user_model.objects.create_user("gina"))

    landed = client.post("/logout/", follow=True)

    assert landed.redirect_chain == [("/", 302)]
    content = landed.content.decode()
    assert '<li class="message success">You have logged out.</li>' in content
    assert "Log out (gina)" not in content
    assert "You have logged out." not in client.get("/").content.decode()


def test_logging_out_when_not_logged_in_says_nothing(client: Client):
    landed = client.post("/logout/", follow=True)

    assert landed.status_code == 200
    assert "You have logged out." not in landed.content.decode()
    assert client.get("/logout/").status_code == 405  # a link cannot log anyone out
