"""Usernames of users a provider login creates: readable, valid, free."""

from __future__ import annotations

import pytest
from django.contrib.auth.validators import ASCIIUsernameValidator
from hypothesis import given, settings
from hypothesis import strategies as st
from social_django.models import UserSocialAuth

from integrations.psa.usernames import MAX_BASE, base_name, clean, free_username
from tests.conftest import connect


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        ("Alice Example", "alice-example"),
        ("José García", "jose-garcia"),
        ("alice.smith", "alice.smith"),
        ("--a..b__", "a.b"),
        ("O'Brien 🙂", "o-brien"),
        ("R2-D2", "r2-d2"),
        ("\u0430lice", ""),  # a Cyrillic first letter: "lice" would mislead
        ("小明", ""),
        ("🙂", ""),
        ("x" * 200, "x" * MAX_BASE),
    ],
)
def test_clean(raw, expected):
    assert clean(raw) == expected


@pytest.mark.parametrize(
    ("details", "uid", "expected"),
    [
        ({"username": "alice", "fullname": "Alice Example"}, "user_alice", "alice"),
        # A "username" that is only the account id gives way to a name, then an e-mail.
        ({"username": "user_0001", "fullname": "Alice Example"}, "user_0001", "alice-example"),
        ({"username": "user_0001", "email": "Al.Ice@example.org"}, "user_0001", "al.ice"),
        ({"username": "user_0001"}, "user_0001", "user_0001"),
        ({"first_name": "Bob", "last_name": "Builder"}, "42", "bob-builder"),
        ({"username": "小明", "email": "xiaoming@example.cn"}, "9", "xiaoming"),
        ({}, "", "user"),
        ({"username": "🙂"}, "🙂", "user"),
    ],
)
def test_base_name(details, uid, expected):
    assert base_name(details, uid) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_clean_gives_a_valid_django_username_or_nothing(raw):
    name = clean(raw)
    assert len(name) <= MAX_BASE
    if name:
        ASCIIUsernameValidator()(name)
        assert name == name.lower() and name[0] not in "._-" and name[-1] not in "._-"


@pytest.mark.django_db
def test_a_number_follows_only_when_the_name_is_taken(django_user_model):
    assert free_username("alice") == "alice"
    django_user_model.objects.create_user("alice")
    assert free_username("alice") == "alice2"
    django_user_model.objects.create_user("ALICE2")  # the same name, to a person
    django_user_model.objects.create_user("alice4")
    django_user_model.objects.create_user("alicexyz")  # another name altogether
    assert free_username("alice") == "alice3"


@pytest.mark.django_db
def test_a_name_ending_in_a_digit_gets_a_separated_number(django_user_model):
    django_user_model.objects.create_user("r2d2")
    assert free_username("r2d2") == "r2d2-2"


@pytest.mark.django_db
def test_the_name_is_used_as_a_literal_not_a_pattern(django_user_model):
    django_user_model.objects.create_user("aXb")
    assert free_username("a.b") == "a.b"


@pytest.mark.django_db
@pytest.mark.parametrize(("backend", "expected"), [("demo", "bob"), ("monzo", "user_bob")])
def test_a_provider_login_names_the_new_user(client, provider, backend, expected):
    """The demo provider's user-info gives the handle; Monzo's only the account id."""
    provider.approve("bob")
    connect(client, provider, backend, username="bob")
    assert UserSocialAuth.objects.get(provider=backend).user.username == expected
