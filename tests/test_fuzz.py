"""Random input at the callback and the disconnect endpoint: never a 500, nothing changes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from social_django.models import UserSocialAuth

from tests.conftest import connect

pytestmark = pytest.mark.django_db

names = st.sampled_from(
    ["code", "state", "error", "error_description", "next", "redirect_state"]
) | st.text(min_size=1, max_size=20)
values = st.text(max_size=300) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
queries = st.dictionaries(names, values, max_size=6)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def victim(client, provider, django_user_model):
    """An existing association the fuzzing must not touch, and a logged-in other user."""
    connect(client, provider, "demo")
    client.logout()
    other = django_user_model.objects.create_user("fuzzer", password="a-long-password-1")
    client.force_login(other)
    return list(UserSocialAuth.objects.values_list("pk", "user_id", "uid", "extra_data"))


@FUZZ
@given(query=queries, backend=st.sampled_from(["demo", "monzo"]))
def test_random_callbacks(query, backend, client, victim):
    response = client.get(f"/complete/{backend}/", query)
    assert response.status_code != 500
    assert list(UserSocialAuth.objects.values_list("pk", "user_id", "uid", "extra_data")) == victim


@FUZZ
@given(
    body=queries,
    target=st.sampled_from(["/disconnect/demo/", "/disconnect/monzo/", "/disconnect/demo/{pk}/"]),
)
def test_random_disconnects(body, target, client, victim):
    path = target.format(pk=victim[0][0])
    response = client.post(path, body)
    assert response.status_code != 500
    assert list(UserSocialAuth.objects.values_list("pk", "user_id", "uid", "extra_data")) == victim
