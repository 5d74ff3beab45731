"""Fail-closed defaults and protective headers.

DEBUG is off unless the environment turns it on, and without its secrets the site refuses to
start with one line. Every page carries a Content-Security-Policy allowing only the site's own
files, and every page that shows account data is sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from dotenv import dotenv_values

REPO = Path(__file__).resolve().parent.parent


# --- Fail-closed defaults ----------------------------------------------------------------------


def clean_env(**env: str) -> dict[str, str]:
    """The test process's environment without the site's settings, plus `env`.

    DEBUG, SECRET_KEY and CUSTODIAN_ENCRYPTION_KEYS are set empty rather than removed: an empty
    value counts as unset in the settings, and it keeps a developer's `.env` from filling them.
    """
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DEBUG", "DATABASE", "SECRET_KEY", "CUSTODIAN_"))
    }
    return {**base, "DEBUG": "", "SECRET_KEY": "", "CUSTODIAN_ENCRYPTION_KEYS": "", **env}


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_debug_is_off_when_unset():
    env = clean_env(
        SECRET_KEY="x7#k2!" + "p9q" * 20,
        CUSTODIAN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_SETTINGS_MODULE="site_config.settings",
    )
    program = "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG)"
    result = run_python("-c", program, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (["manage.py", "check"], "SECRET_KEY"),
        (["manage.py", "runserver", "--noreload", "127.0.0.1:0"], "SECRET_KEY"),
        (["-c", "import site_config.wsgi"], "SECRET_KEY"),
        (["-c", "import site_config.asgi"], "SECRET_KEY"),
        (["manage.py", "check"], "CUSTODIAN_ENCRYPTION_KEYS"),
    ],
    ids=["check", "runserver", "wsgi", "asgi", "check-no-keys"],
)
def test_without_debug_and_secrets_the_site_refuses_to_start_in_one_line(command, missing):
    env = clean_env()
    if missing != "SECRET_KEY":
        env["SECRET_KEY"] = "x7#k2!" + "p9q" * 20
    result = run_python(*command, env=env)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Custodian cannot start:"), lines
    assert f"{missing} must be set when DEBUG is off" in lines[0]
    assert ".env.example" in lines[0]


def test_env_example_turns_debug_on_and_sets_nothing_else():
    """`cp .env.example .env` gives a development site; secrets are examples, commented out."""
    values = dotenv_values(REPO / ".env.example")
    assert values == {"DEBUG": "true"}
    text = (REPO / ".env.example").read_text()
    for name in ("SECRET_KEY", "CUSTODIAN_ENCRYPTION_KEYS", "DATABASE_URL", "LOG_LEVEL"):
        assert f"# {name}=" in text, name


def test_env_file_is_not_committed():
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=REPO, capture_output=True, timeout=30
    )
    assert result.returncode == 0, ".env must be git-ignored"


def test_make_targets_turn_debug_on(tmp_path):
    """`make run`, `make test` (and so .ci/run) and `make bench` see DEBUG=true."""
    probe = tmp_path / "probe.mk"
    probe.write_text("probe:\n\t@echo DEBUG=$$DEBUG\n")
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", str(probe), "probe"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DEBUG=true"


# --- Content-Security-Policy -------------------------------------------------------------------


def policy(response) -> dict[str, set[str]]:
    """The response's Content-Security-Policy as {directive: {sources}}."""
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.wsgi_request.path}"
    directives: dict[str, set[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = set(sources)
    return directives


OWN_FILES_ONLY = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "frame-ancestors": {"'none'"},
}


@pytest.fixture
def logged_in_admin(client, django_user_model, db):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-1-long")
    client.force_login(admin)
    return admin


@pytest.mark.parametrize(
    "path", ["/", "/login/", "/connections/", "/account/password/", "/admin/", "/admin/login/"]
)
def test_every_page_allows_only_our_own_files(path, client, logged_in_admin, provider):
    if path in {"/login/", "/admin/login/"}:
        client.logout()
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    directives = policy(response)
    for name, sources in OWN_FILES_ONLY.items():
        assert directives.get(name) == sources, (path, name, directives.get(name))
    # Forms may go to the site itself and, through the login redirect, to the providers.
    assert directives["form-action"] == {"'self'", provider.base_url}
    assert not any("unsafe" in source for sources in directives.values() for source in sources)


def test_error_pages_have_the_policy_too(client, provider, db):
    not_found = client.get("/no-such-page/")
    assert not_found.status_code == 404
    assert policy(not_found)["script-src"] == {"'self'"}
    # A failed login (here: a callback nobody started) shows the social-auth error page.
    failed = client.get("/complete/demo/?error=access_denied&state=nope")
    assert failed.status_code in {400, 403, 502}, failed.status_code
    assert "That did not work" in failed.content.decode()
    assert policy(failed)["script-src"] == {"'self'"}


@pytest.fixture
def more_providers(settings, provider):
    """Declare a configured provider elsewhere and one without a client id."""
    from social_core.backends import utils as backend_utils

    settings.CUSTODIAN_PROVIDERS = {
        **settings.CUSTODIAN_PROVIDERS,
        "strava": {
            "authorization_url": "https://www.Strava.com:443/oauth/authorize?approval=auto",
            "token_url": "https://www.strava.com/oauth/token",
            "api_base_url": "https://www.strava.com/api/v3",
            "userinfo_url": "https://www.strava.com/api/v3/athlete",
            "client_id": "abc",
        },
        "idle": {
            "authorization_url": "https://idle.example/authorize",
            "token_url": "https://idle.example/token",
            "api_base_url": "https://idle.example",
            "userinfo_url": "https://idle.example/me",
        },
    }
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "backends.declared.strava",
        "backends.declared.idle",
    ]
    backend_utils.BACKENDSCACHE.clear()
    yield
    backend_utils.BACKENDSCACHE.clear()


def test_form_action_follows_the_configured_providers(client, settings, more_providers, provider):
    settings.CUSTODIAN_CSP_FORM_ACTION = ["https://login.strava.com/"]
    settings.MONZO_AUTH_URL = "https://auth.monzo.com/"
    form_action = policy(client.get("/login/"))["form-action"]
    assert form_action == {
        "'self'",
        provider.base_url,  # the demo provider
        "https://auth.monzo.com",
        "https://www.strava.com:443",
        "https://login.strava.com",
    }
    # A provider without a client id offers no button, so no form goes there.
    settings.MONZO_CLIENT_ID = ""
    form_action = policy(client.get("/login/"))["form-action"]
    assert "https://auth.monzo.com" not in form_action
    assert not any("idle.example" in source for source in form_action)


TEMPLATES = REPO / "templates"
# What a policy without 'unsafe-inline' (and without data:) blocks.
INLINE = {
    "inline script": r"<script(?![^>]*\bsrc=)[^>]*>",
    "inline style element": r"<style\b",
    "style attribute": r"\sstyle\s*=",
    "event handler attribute": r"\son[a-z]+\s*=",
    "javascript: URL": r"javascript:",
    "data: URL": r"[\"']data:",
}


@pytest.mark.parametrize("kind", INLINE)
def test_templates_need_nothing_the_policy_blocks(kind):
    import re

    pattern = re.compile(INLINE[kind], re.IGNORECASE)
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in pattern.finditer(path.read_text())
        if not (kind == "inline script" and 'type="application/json"' in match.group(0))
    ]
    assert offenders == []


def test_csrf_failure_page_is_ours_and_needs_no_inline_style(provider, db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "x"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "That form has expired" in page and "<style" not in page
    assert policy(response)["style-src"] == {"'self'"}


# --- Cache-Control: no-store on account data ---------------------------------------------------


def assert_not_stored(response) -> None:
    path = response.wsgi_request.path
    directives = {
        part.strip().split("=")[0] for part in response.get("Cache-Control", "").split(",")
    }
    assert {"no-store", "private"} <= directives, (path, response.get("Cache-Control"))


def test_pages_with_account_data_are_not_stored(client, connected, provider):
    _, association = connected()
    pk = association.pk
    pages = {
        "/": 200,
        "/connections/": 200,
        "/account/password/": 200,
        f"/connections/{pk}/disconnect/": 200,
    }
    for path, status in pages.items():
        response = client.get(path)
        assert response.status_code == status, path
        assert_not_stored(response)
    # The Try it answer is the page of a POST.
    tried = client.post(f"/connections/{pk}/try/")
    assert tried.status_code == 200 and b"try-result" in tried.content
    assert_not_stored(tried)
    assert_not_stored(client.post(f"/connections/{pk}/check/"))


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
def test_login_flow_error_pages_are_not_stored(logged_in, client, connected, provider):
    """social-auth's error pages already said no-store; this keeps it so (NoStoreMiddleware)."""
    if logged_in:
        connected()
    response = client.get("/complete/demo/?error=access_denied&state=nope")
    assert "That did not work" in response.content.decode()
    assert_not_stored(response)


def test_admin_pages_are_not_stored(client, connected, logged_in_admin, provider):
    """Django's admin views send no-store themselves; this keeps the custom ones doing so."""
    user, association = connected()
    client.force_login(logged_in_admin)
    base = "/admin/social_django/usersocialauth"
    pages = [
        "/admin/",
        f"{base}/",
        f"{base}/?status=reauth_required",
        f"{base}/{association.pk}/change/",
        f"{base}/{association.pk}/delete/",  # the revoke-and-disconnect question
        f"{base}/add/",  # connect an account
        f"{base}/connect/complete/demo/?state=unknown",
        "/admin/integrations/credentialevent/",
        f"/admin/integrations/user/{user.pk}/change/",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code in {200, 302}, (path, response.status_code)
        assert_not_stored(response)
    refreshed = client.post(f"{base}/{association.pk}/refresh/")
    assert refreshed.status_code == 302
    assert_not_stored(refreshed)
    client.logout()
    assert_not_stored(client.get("/admin/login/"))


@pytest.mark.django_db
def test_an_openid_provider_that_is_down_is_not_asked_again_on_every_page(
    client, settings, stub_api, enable_backends
):
    from integrations.web import headers

    headers._UNREACHABLE.clear()
    settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = f"{stub_api.base_url}/down"
    settings.SOCIAL_AUTH_OIDC_KEY = "site"
    enable_backends("social_core.backends.open_id_connect.OpenIdConnectAuth")
    first = client.get("/login/")
    second = client.get("/login/")
    assert first.status_code == second.status_code == 200
    assert "OpenID Connect" in first.content.decode()  # still offered; its login explains
    discovery = [hit for hit in stub_api.hits if hit.startswith("/down/")]
    assert discovery == ["/down/.well-known/openid-configuration"]
    assert stub_api.base_url not in policy(second)["form-action"]
    headers._UNREACHABLE.clear()
