"""Tokens and secrets stay off debug pages and out of debug logs, masked by value wherever they
appear (integrations/security/secrets_registry.py, integrations/security/redaction.py), and
SQL parameters are never logged unless CUSTODIAN_LOG_SQL asks for it."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.utils.module_loading import import_string
from django.views.debug import technical_500_response
from social_core.backends.oauth import BaseOAuth2

from integrations.store import crypto
from integrations.store.credentials import read_credentials
from tests.conftest import connect

REPO = Path(__file__).resolve().parent.parent
ACME_SECRET = "acme-client-secret-4f9c2e7d"
BROKER_PASSWORD = "broker-password-0b5d1a"


def secret_token() -> str:
    return secrets.token_urlsafe(24)


def render_debug_page(request, exc_info) -> tuple[str, str]:
    """The technical 500 page (HTML, as served with DEBUG on) and its plain-text version."""
    from django.conf import settings

    html = technical_500_response(request, *exc_info).content.decode()
    reporter = import_string(settings.DEFAULT_EXCEPTION_REPORTER)(request, *exc_info)
    return html, reporter.get_traceback_text()


# --- (a) The technical 500 page: frames, META, settings ---------------------------------------


def debug_page_of(exception: RuntimeError, request=None) -> tuple[str, str]:
    try:
        raise exception
    except RuntimeError:
        return render_debug_page(request or RequestFactory().get("/connections/"), sys.exc_info())


@pytest.mark.django_db
def test_debug_page_frames_mask_known_tokens_by_value(connected, settings):
    settings.DEBUG = True
    _, association = connected()
    credentials = read_credentials(association.extra_data)  # decrypted: known to the process
    key = settings.CUSTODIAN_ENCRYPTION_KEYS[0]

    def wrapper(*args):  # the shape of social-core's handle_http_errors: the token in `args`
        fernet_key = key  # a local under a name no pattern knows
        raise ValueError(f"provider refused {credentials.refresh_token} ({len(fernet_key)})")

    try:
        wrapper(credentials.access_token)
    except ValueError:
        html, text = render_debug_page(RequestFactory().get("/connections/"), sys.exc_info())

    for page in (html, text):
        assert "provider refused [redacted]" in page and "wrapper" in page  # really rendered
        for secret in (credentials.access_token, credentials.refresh_token, key):
            assert secret not in page


def test_debug_page_meta_masks_client_secrets_from_the_environment(settings, monkeypatch):
    settings.DEBUG = True
    acme = {"title": "Acme", "client_id": "acme-client", "client_secret": ACME_SECRET}
    monkeypatch.setenv("CUSTODIAN_PROVIDERS", json.dumps({"acme": acme}))
    settings.CUSTODIAN_PROVIDERS = {**settings.CUSTODIAN_PROVIDERS, "acme": acme}  # as parsed
    # runserver copies the environment into every request's META.
    request = RequestFactory().get("/", CUSTODIAN_PROVIDERS=os.environ["CUSTODIAN_PROVIDERS"])

    html, text = debug_page_of(RuntimeError("boom"), request)

    for page in (html, text):
        assert "CUSTODIAN_PROVIDERS" in page and "acme-client" in page  # shown, but masked
        assert ACME_SECRET not in page


def test_debug_page_settings_mask_secrets_by_value(settings):
    settings.DEBUG = True
    acme = {"title": "Acme", "client_id": "acme-client", "client_secret": ACME_SECRET}
    settings.CUSTODIAN_PROVIDERS = {**settings.CUSTODIAN_PROVIDERS, "acme": acme}
    settings.CELERY_BROKER_URL = f"redis://:{BROKER_PASSWORD}@redis.internal:6379/0"

    html, text = debug_page_of(RuntimeError("boom"))

    assert "redis.internal:6379" in html and "acme-client" in html
    for page in (html, text):
        for secret in (
            ACME_SECRET,
            BROKER_PASSWORD,
            "custodian-demo-secret",
            *settings.CUSTODIAN_ENCRYPTION_KEYS,
            settings.SECRET_KEY,
        ):
            assert secret not in page


def test_debug_page_hides_crypto_helpers_value_and_key(settings):
    settings.DEBUG = True
    # Too short to be masked by value: only the rule for crypto frames hides it. (No local
    # here holds it: this frame is on the page too.)
    settings.CUSTODIAN_ENCRYPTION_KEYS = ["oops-ky"]
    token = secret_token()

    try:
        crypto.encrypt(token)
    except ImproperlyConfigured:
        html, text = render_debug_page(RequestFactory().get("/"), sys.exc_info())

    for page in (html, text):
        assert "ImproperlyConfigured" in page and "_fernet" in page
        assert token not in page
        assert "'oops-ky'" not in page and "&#x27;oops-ky&#x27;" not in page


# --- (b) The scenario: DEBUG on, a bad encryption key, a login -------------------------


@pytest.fixture
def issued_tokens(monkeypatch) -> list[dict]:
    """Every token response the site receives from the provider during the test."""
    responses: list[dict] = []
    original = BaseOAuth2.request_access_token

    def spy(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        responses.append(dict(response))
        return response

    monkeypatch.setattr(BaseOAuth2, "request_access_token", spy)
    return responses


@pytest.mark.django_db
@pytest.mark.parametrize("moment", ["first-login", "reconnect"])
def test_bad_key_debug_page_at_login_shows_no_token_and_no_key(
    moment, connected, provider, settings, issued_tokens
):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    good_key = settings.CUSTODIAN_ENCRYPTION_KEYS[0]
    if moment == "reconnect":
        user, _ = connected()
        client.force_login(user)
    bad_key = "not-a-fernet-key-but-long-enough"
    settings.CUSTODIAN_ENCRYPTION_KEYS = [bad_key]  # past the start-up check (edited at run time)

    username = "bob" if moment == "first-login" else "alice"
    response = connect(client, provider, "demo", username=username)

    page = response.content.decode()
    assert response.status_code == 500 and "ImproperlyConfigured" in page  # the debug page
    tokens = {
        answer[name]
        for answer in issued_tokens
        for name in ("access_token", "refresh_token")
        if answer.get(name)
    }
    assert tokens
    for secret in (*tokens, bad_key, good_key):
        assert secret not in page


@pytest.mark.django_db
def test_wrong_key_decryption_error_page_shows_no_token_and_no_key(connected, settings):
    settings.DEBUG = True
    _, association = connected()
    credentials = read_credentials(association.extra_data)
    old_key = settings.CUSTODIAN_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.CUSTODIAN_ENCRYPTION_KEYS = [new_key]  # valid, but decrypts nothing stored

    def call_api(*args):  # a caller holding the token it had, bare, in `args`
        return read_credentials(association.extra_data)

    with pytest.raises(crypto.DecryptionError):
        try:
            call_api(credentials.access_token, credentials.refresh_token)
        except crypto.DecryptionError:
            html, text = render_debug_page(RequestFactory().get("/connections/"), sys.exc_info())
            raise

    for page in (html, text):
        assert "DecryptionError" in page
        for secret in (credentials.access_token, credentials.refresh_token, old_key, new_key):
            assert secret not in page


# --- (c) Debug logs through the configured handlers ---------------------------------------------


@pytest.fixture
def debug_console() -> Iterator[io.StringIO]:
    """What the site's console handler (configured by settings.LOGGING) writes with the
    `django` logger at DEBUG, as LOG_LEVEL=DEBUG sets it."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.name == "console"
    )
    stream = io.StringIO()
    previous_stream = handler.setStream(stream)
    django_logger = logging.getLogger("django")
    previous_level = django_logger.level
    django_logger.setLevel(logging.DEBUG)
    yield stream
    django_logger.setLevel(previous_level)
    handler.setStream(previous_stream)


def test_django_template_debug_log_masks_known_tokens(debug_console):
    token = secret_token()
    crypto.encrypt(token)  # how the process learns a token: it stores it

    # A failed lookup logs the context's repr at DEBUG, with the traceback.
    Template("{{ account.missing }}").render(Context({"account": {"value": token}}))
    try:
        raise LookupError(token)
    except LookupError:
        logging.getLogger("django.template").debug("Resolving %s failed", (token,), exc_info=True)

    output = debug_console.getvalue()
    assert "Exception while resolving variable 'missing'" in output
    assert "Resolving ('[redacted]',) failed" in output
    assert "LookupError: [redacted]" in output
    assert token not in output


# --- (d) SQL parameters, with LOG_LEVEL=DEBUG --------------------------------------------------

SQL_SCRIPT = """
import logging, sys
import django
django.setup()
from django.db import connection
logging.getLogger("django.template").debug("django debug logging is on")
with connection.cursor() as cursor:
    cursor.execute("SELECT %s, %s, %s", sys.argv[1:4])
"""


def run_with_debug_logging(tmp_path: Path, log_sql: str | None, *params: str) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CUSTODIAN_LOG_SQL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="site_config.settings",
        DEBUG="true",
        LOG_LEVEL="DEBUG",
        SQLITE_PATH=str(tmp_path / "site.sqlite3"),
        MONZO_CLIENT_SECRET=params[1],
    )
    if log_sql is not None:
        env["CUSTODIAN_LOG_SQL"] = log_sql
    result = subprocess.run(
        [sys.executable, "-c", SQL_SCRIPT, *params],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "django debug logging is on" in output  # DEBUG records do get through
    return output


@pytest.fixture
def sql_params() -> tuple[str, str, str]:
    password_hash = f"pbkdf2_sha256$1000000${secrets.token_hex(8)}${secrets.token_urlsafe(32)}"
    return password_hash, f"monzo-secret-{secrets.token_hex(8)}", secrets.token_hex(16)


def test_sql_parameters_are_not_logged_at_debug_by_default(tmp_path, sql_params):
    output = run_with_debug_logging(tmp_path, None, *sql_params)

    assert "SELECT" not in output
    for param in sql_params:
        assert param not in output


def test_custodian_log_sql_logs_queries_with_known_secrets_masked(tmp_path, sql_params):
    password_hash, client_secret, _ = sql_params

    output = run_with_debug_logging(tmp_path, "true", *sql_params)

    assert "SELECT" in output and "django.db.backends" in output
    assert client_secret not in output  # a configured secret, masked by value
    assert password_hash not in output and "pbkdf2_sha256$[redacted]" in output


# --- The registry itself -----------------------------------------------------------------------


def test_registry_finds_secrets_embedded_anywhere():
    from integrations.security import secrets_registry

    registry = secrets_registry.SecretRegistry()
    token, short = secret_token(), "8chars!!"
    registry.register_many([token, short, "tiny"])

    for shape in (f"x={token}&y", f"--{token}--", f"{token}{token}", f"a{short}b", token):
        masked = registry.mask(shape)
        assert token not in masked and short not in masked, shape
    assert registry.mask("tiny things") == "tiny things"  # too short to mask anywhere
    assert registry.mask(token[:-1]) == token[:-1]  # a part of a secret is no secret


def test_registry_is_bounded_and_keeps_configured_secrets():
    from integrations.security import secrets_registry

    registry = secrets_registry.SecretRegistry(runtime_capacity=3)
    client_secret = "configured-client-secret"
    registry.register(client_secret, configured=True)
    tokens = [secret_token() for _ in range(5)]
    registry.register_many(tokens)

    assert len(registry) == 4
    assert tokens[0] in registry.mask(tokens[0])  # the oldest runtime values are forgotten
    assert registry.mask(" ".join(tokens[2:])) == " ".join(["[redacted]"] * 3)
    assert registry.mask(client_secret) == "[redacted]"


def test_settings_secrets_are_found_by_name_nested_and_in_urls():
    from integrations.security import secrets_registry

    settings = SimpleNamespace(
        SECRET_KEY="django-secret-key-value",
        SECRET_KEY_FALLBACKS=["older-secret-key-value"],
        CUSTODIAN_ENCRYPTION_KEYS=["fernet-key-value-aaaa"],
        CUSTODIAN_PROVIDERS={
            "acme": {"client_secret": ACME_SECRET, "token_url": "https://acme.example/token"}
        },
        DATABASES={"default": {"PASSWORD": "database-password"}},
        CELERY_BROKER_URL=f"redis://:{BROKER_PASSWORD}@redis:6379/0",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
        LOGGING={
            "filters": {"redact_secrets": {"()": "integrations.security.redaction.RedactingFilter"}}
        },
    )

    found = set(secrets_registry.configured_secrets(settings))

    assert found == {
        "django-secret-key-value",
        "older-secret-key-value",
        "fernet-key-value-aaaa",
        ACME_SECRET,
        "database-password",
        BROKER_PASSWORD,
    }
