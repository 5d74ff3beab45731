"""Secrets stay secret, and every bad input at the callback is answered cleanly."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import RequestFactory
from social_django.models import UserSocialAuth

from integrations import ReauthRequired, RefreshFailed, get_session, refresh
from integrations.store.credentials import Credentials, read_credentials
from tests.conftest import connect, expire_locally, raw_extra_data

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parent.parent


def snapshot() -> list:
    return list(
        UserSocialAuth.objects.order_by("pk").values_list("pk", "user_id", "uid", "extra_data")
    )


# --- Encryption at rest and key rotation -----------------------------------------------------


def test_rows_from_before_encryption_are_read_and_upgraded(connected, provider):
    user, association = connected()
    plain = read_credentials(association.extra_data)
    association.extra_data = {
        **association.extra_data,
        "access_token": plain.access_token,
        "refresh_token": plain.refresh_token,
    }
    association.save()  # a legacy, plaintext row

    assert get_session(user, "demo").get("/ping/whoami").status_code == 200
    refresh(association, force=True)

    raw = raw_extra_data(association)
    new = read_credentials(UserSocialAuth.objects.get(pk=association.pk).extra_data)
    assert new.access_token not in raw and new.refresh_token not in raw
    assert raw.count("enc:") == 2


def test_rotate_encryption_keys_is_resumable_and_idempotent(
    client, provider, settings, monkeypatch
):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CUSTODIAN_ENCRYPTION_KEYS = [old_key]
    for name in ("alice", "bob", "carol"):
        connect(client, provider, "demo", username=name)
        client.logout()
    before = {a.pk: read_credentials(a.extra_data) for a in UserSocialAuth.objects.all()}
    settings.CUSTODIAN_ENCRYPTION_KEYS = [new_key, old_key]

    # Killed after the first batch: every row is still readable with the keys in force.
    from integrations.management.commands import rotate_encryption_keys as command

    real_merge, calls = command.merge_extra_data, cast(list[tuple], [])

    def dying_merge(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(args)
        real_merge(*args, **kwargs)

    monkeypatch.setattr(command, "merge_extra_data", dying_merge)
    with pytest.raises(KeyboardInterrupt):
        call_command("rotate_encryption_keys", batch_size=1, stdout=io.StringIO())
    for association in UserSocialAuth.objects.all():
        assert read_credentials(association.extra_data) == before[association.pk]
    monkeypatch.setattr(command, "merge_extra_data", real_merge)

    out = io.StringIO()
    call_command("rotate_encryption_keys", batch_size=2, stdout=out)
    assert "2 of 3 associations re-encrypted" in out.getvalue()
    settings.CUSTODIAN_ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    for association in UserSocialAuth.objects.all():
        assert read_credentials(association.extra_data) == before[association.pk]
    again = io.StringIO()
    call_command("rotate_encryption_keys", stdout=again)
    assert "0 of 3 associations re-encrypted" in again.getvalue()


# --- No leaks --------------------------------------------------------------------------------


@pytest.fixture
def console_log():
    """What the site's real console handler (with its redaction filter) writes, at DEBUG."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.name == "console"
    )
    stream = io.StringIO()
    previous_stream = handler.setStream(stream)
    loggers = [logging.getLogger(name) for name in ("", "urllib3", "social", "integrations")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield stream
    handler.setStream(previous_stream)
    for logger, level in zip(loggers, levels, strict=False):
        logger.setLevel(level)


def all_tokens() -> set[str]:
    tokens = set()
    for association in UserSocialAuth.objects.all():
        credentials = read_credentials(association.extra_data)
        tokens |= {credentials.access_token, credentials.refresh_token or ""}
    return tokens - {""}


def test_no_token_in_logs_or_pages_through_a_whole_life(
    client, provider, console_log, django_user_model
):
    seen: set[str] = set()
    user = django_user_model.objects.create_user("dora", password="a-long-password-1")
    client.force_login(user)
    connect(client, provider, "demo")
    seen |= all_tokens()
    association = UserSocialAuth.objects.get()
    pages = client.get("/connections/").content.decode()
    logging.getLogger("integrations").info("Authorization: Bearer %s", next(iter(seen)))

    expire_locally(association)
    get_session(user, "demo").get("/ping/whoami")  # refresh
    seen |= all_tokens()
    expire_locally(association)
    provider.fault("server_error")
    with pytest.raises(RefreshFailed):
        get_session(user, "demo").get("/ping/whoami")
    provider.fault("garbage")
    with pytest.raises(RefreshFailed):
        get_session(user, "demo").get("/ping/whoami")
    provider.revoke_grant("alice")
    with pytest.raises(ReauthRequired) as caught:
        get_session(user, "demo").get("/ping/whoami")
    pages += client.get("/connections/").content.decode()
    client.post(f"/disconnect/demo/{association.pk}/")

    logs = console_log.getvalue()
    assert "Bearer [redacted]" in logs  # the filter really ran on what was logged
    assert "Refreshed demo token" in logs
    for token in seen:
        assert token not in logs
        assert token not in pages
        assert token not in str(caught.value)
    assert "enc:" not in pages


def test_redaction_covers_common_shapes():
    from integrations.security.redaction import redact

    secret = "s3cr3t-t0ken-value-123456"
    for text in (
        f"Authorization: Bearer {secret}",
        f'{{"access_token": "{secret}", "x": 1}}',
        f"grant_type=refresh_token&refresh_token={secret}&client_id=a",
        f"{{'refresh_token': '{secret}'}}",
        f"client_secret={secret}",
    ):
        assert secret not in redact(text), text


def test_technical_error_page_hides_tokens(connected):
    from django.conf import settings
    from django.utils.module_loading import import_string
    from django.views.debug import ExceptionReporter

    _, association = connected()
    credentials = read_credentials(association.extra_data)
    request = RequestFactory().get(f"/complete/demo/?code={credentials.access_token}&state=x")

    def failing(access_token: str, creds: Credentials, extra: dict) -> None:
        raise ValueError("boom")

    try:
        failing(credentials.access_token, credentials, {"refresh_token": credentials.refresh_token})
    except ValueError:
        reporter_class = import_string(settings.DEFAULT_EXCEPTION_REPORTER)
        assert issubclass(reporter_class, ExceptionReporter)
        html = reporter_class(request, *sys.exc_info()).get_traceback_html()
    assert "boom" in html
    assert credentials.access_token not in html
    assert credentials.refresh_token not in html


def test_repr_of_our_objects_shows_no_token(connected):
    user, association = connected()
    credentials = read_credentials(association.extra_data)
    for shown in (
        repr(credentials),
        str(credentials),
        repr(get_session(user, "demo")),
        str(association),
        repr(association),
    ):
        assert credentials.access_token not in shown
        assert credentials.refresh_token not in shown


# --- The callback's edges ---------------------------------------------------------------------


def begin(client, provider, backend="demo", username="alice"):
    """Start a flow and return the callback the provider would send (path, params)."""
    location = client.post(f"/login/{backend}/")["Location"]
    callback = urlsplit(provider.authorize(location, username=username))
    return callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()}


@pytest.mark.parametrize("backend", ["demo", "monzo"])
def test_replayed_callback_creates_nothing_more(backend, client, provider):
    path, params = begin(client, provider, backend)
    assert client.get(path, params).status_code == 302
    before = snapshot()

    response = client.get(path, params)

    assert response.status_code == 403
    assert snapshot() == before


def test_code_used_twice_is_refused(client, provider, django_user_model):
    path, first = begin(client, provider)
    client.get(path, first)
    client.logout()
    before = snapshot()
    _, second = begin(client, provider)

    response = client.get(path, {"code": first["code"], "state": second["state"]})

    assert response.status_code == 400
    assert b"already used or has expired" in response.content
    assert snapshot() == before


@pytest.mark.parametrize(
    "params,status",
    [
        ({"state": "{state}"}, 400),  # missing code
        ({"error": "access_denied", "state": "{state}"}, 403),
        ({"error": "server_error", "state": "{state}"}, 503),
        ({"error": "temporarily_unavailable", "state": "{state}"}, 503),
        ({"error": "made_up_error", "state": "{state}"}, 502),
        ({"code": "x", "state": "s" * 10_000}, 403),  # oversize state
        ({"code": "c" * 100_000, "state": "{state}"}, 400),  # oversize code
        ({"code": "\x00\xff\ufffd", "state": "\x00bin\x00"}, 403),  # binary
        ({"code": "x", "state": "{state}", "next": "https://evil.example/"}, 400),
    ],
)
def test_bad_callbacks_get_a_clear_answer_and_change_nothing(params, status, client, provider):
    path, real = begin(client, provider)
    filled = {k: v.replace("{state}", real["state"]) for k, v in params.items()}
    response = client.get(path, filled)

    assert response.status_code == status, response.content[:300]
    assert b"<h1>That did not work</h1>" in response.content
    assert not UserSocialAuth.objects.exists()


def test_unknown_backend_is_a_friendly_404(client):
    response = client.get("/complete/nope/", {"code": "x", "state": "y"})
    assert response.status_code == 404
    assert b"Not found" in response.content


@pytest.mark.parametrize("fault,status", [("garbage", 502), ("server_error", 503)])
def test_token_endpoint_trouble_at_login_changes_nothing(fault, status, client, provider):
    path, params = begin(client, provider)
    provider.fault(fault, grant_type="authorization_code")

    response = client.get(path, params)

    assert response.status_code == status
    assert not UserSocialAuth.objects.exists()


def test_token_endpoint_down_at_login(client, provider, settings):
    path, params = begin(client, provider)
    settings.CUSTODIAN_PROVIDERS["demo"]["token_url"] = "http://127.0.0.1:9/token"
    response = client.get(path, params)
    assert response.status_code == 503
    assert b"could not be reached" in response.content
    assert not UserSocialAuth.objects.exists()


def test_next_cannot_redirect_off_site(client, provider):
    location = client.post("/login/demo/", {"next": "https://evil.example/steal"})["Location"]
    callback = urlsplit(provider.authorize(location))
    response = client.get(f"{callback.path}?{callback.query}")
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


# --- Production settings ------------------------------------------------------------------------


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG", "DATABASE"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x7#k2!" + "p9q" * 20,
    "ALLOWED_HOSTS": "custodian.example",
    "CUSTODIAN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


def test_deploy_check_is_clean_in_production():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_an_encryption_key():
    env = {**PRODUCTION_ENV, "CUSTODIAN_ENCRYPTION_KEYS": ""}
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert "CUSTODIAN_ENCRYPTION_KEYS must be set" in result.stderr


def test_redaction_keeps_error_codes_but_hides_authorization_codes():
    from integrations.security.redaction import redact

    line = redact("failure code=state_mismatch on GET /complete/demo/?code=AUTHCODE123&state=x")
    assert "code=state_mismatch" in line
    assert "AUTHCODE123" not in line
    assert "SECRET2" not in redact("grant_type=authorization_code&code=SECRET2&redirect_uri=y")
