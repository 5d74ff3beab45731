"""Fixtures: a real OAuth 2.0 authorization server on loopback, and the site pointed at it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from social_django.models import UserSocialAuth

from site_config.providers import demo_provider_declaration
from tests.provider import LoopbackProvider
from tests.token_server import TokenServer

DEMO_CLIENT = ("custodian-demo", "custodian-demo-secret")
MONZO_CLIENT = ("custodian-monzo", "custodian-monzo-secret")
# The demo provider's OpenID Connect client (RS256 ID tokens, discovery at its base URL).
OIDC_CLIENT = ("custodian-oidc", "custodian-oidc-secret")


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackProvider]:
    """One demo provider process for the whole run (its own SQLite file)."""
    server = LoopbackProvider(db_path=tmp_path_factory.mktemp("provider") / "provider.sqlite3")
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def site_uses_loopback_provider(settings, provider: LoopbackProvider) -> LoopbackProvider:
    """Point the demo (generic) and the Monzo backends at the loopback server; reset it."""
    provider.reset()
    settings.CUSTODIAN_PROVIDERS = {
        "demo": demo_provider_declaration(provider.base_url, *DEMO_CLIENT)
    }
    settings.MONZO_CLIENT_ID, settings.MONZO_CLIENT_SECRET = MONZO_CLIENT
    settings.MONZO_AUTH_URL = f"{provider.base_url}/oauth2/authorize/"
    settings.MONZO_API_URL = provider.base_url
    return provider


CHOICE_URL = "/account/choose/"


def connect(
    client: Client,
    provider: LoopbackProvider,
    backend: str = "demo",
    *,
    username: str = "alice",
    allow: bool = True,
    choose: str | None = "create",
):
    """Run the whole authorization-code flow like a browser; return the callback's response.

    A provider account linked to no one, with nobody logged in, stops at the choice between
    a new account and an existing one: `choose="create"` (the default) creates one and
    returns the resumed callback's response; `choose=None` returns the redirect to the page.
    """
    begin = client.post(f"/login/{backend}/")
    assert begin.status_code == 302, begin.status_code
    callback = urlsplit(provider.authorize(begin["Location"], username=username, allow=allow))
    assert callback.path == f"/complete/{backend}/", callback.path
    response = client.get(f"{callback.path}?{callback.query}")
    if choose is None or response.get("Location") != CHOICE_URL:
        return response
    return choose_account(client, choose)


def choose_account(client: Client, action: str = "create", **fields: str):
    """Answer the choice page (`action`: create, link or cancel) and, when that resumes the
    login, follow to the resumed callback; return the last response."""
    answer = client.post(CHOICE_URL, {"action": action, **fields})
    location = answer.get("Location", "")
    if answer.status_code != 302 or not location.startswith("/complete/"):
        return answer
    return client.get(location)


@pytest.fixture
def connected(client: Client, provider: LoopbackProvider, db):
    """Log in through the loopback provider as `username`; return (user, association)."""

    def _connect(backend: str = "demo", username: str = "alice"):
        provider.approve(username)  # Monzo's in-app approval, done up front
        response = connect(client, provider, backend, username=username)
        assert response.status_code == 302, response.content[:500]
        association = UserSocialAuth.objects.get(provider=backend, uid=f"user_{username}")
        return association.user, association

    return _connect


@pytest.fixture
def enable_backends(settings):
    """`enable_backends(*paths)`: add social-core backends to AUTHENTICATION_BACKENDS, the way
    CUSTODIAN_BACKENDS does, for this test only (social-core caches the loaded backends)."""
    from social_core.backends import utils as backend_utils

    def _enable(*paths: str) -> None:
        settings.AUTHENTICATION_BACKENDS = [*paths, *settings.AUTHENTICATION_BACKENDS]
        backend_utils.BACKENDSCACHE.clear()

    yield _enable
    backend_utils.BACKENDSCACHE.clear()


@pytest.fixture
def stub_api() -> Iterator:
    """A loopback API that answers 401 always, slowly, or echoes a token fingerprint."""
    from tests.stub_api import StubAPI

    api = StubAPI()
    yield api
    api.stop()


def expire_locally(association: UserSocialAuth, seconds_ago: int = 10) -> None:
    """Make the stored access token look expired (the provider still accepts it)."""
    import time

    from integrations.store.writes import merge_extra_data

    merge_extra_data(association.pk, {"expires_at": int(time.time()) - seconds_ago})
    association.refresh_from_db()


def raw_extra_data(association: UserSocialAuth) -> str:
    """Return the row's extra_data exactly as the database holds it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extra_data FROM social_auth_usersocialauth WHERE id = %s", [association.pk]
        )
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def save_screenshot(page, path: Path) -> None:
    """Save a full-page screenshot at `path`, whole or not at all: `make test` runs the SQLite
    and the PostgreSQL pass at once, and both write the same files in tests/artifacts/."""
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(page.screenshot(full_page=True))
    partial.replace(path)


@pytest.fixture
def chromium() -> str:
    """The path of Debian's chromium; without it, the test fails with one line saying what to
    run (tests/browser.py), before Playwright could print its stack trace."""
    from tests.browser import require_chromium

    return require_chromium()


def on_postgresql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def database_env(settings) -> dict[str, str]:
    """The environment that points a site process (a worker, a management command) at this
    test's database: the test database, not the configured one."""
    db = settings.DATABASES["default"]
    if on_postgresql():
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return {
            "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/"
            f"{db['NAME']}"
        }
    return {"SQLITE_PATH": str(db["NAME"])}


def command_env(settings, provider_url: str, **extra: str) -> dict[str, str]:
    """The environment of a site command a test runs as its own process: this test's
    database and provider, and nothing inherited that would configure it otherwise (the
    terminal's size, Celery's or Custodian's own variables)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "SQLITE_PATH", "COLUMNS", "LINES")
        and not key.startswith(("CELERY_", "CUSTODIAN_"))
    }
    environment.update(
        database_env(settings),
        DJANGO_SETTINGS_MODULE="site_config.settings",
        DEMO_PROVIDER_URL=provider_url,
        **extra,
    )
    return environment


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run `postgres`-marked tests in the PostgreSQL pass of `make test` only (deselected,
    not skipped: `make test` always runs both passes, and CI fails without PostgreSQL)."""
    if on_postgresql():
        return
    selected = [item for item in items if "postgres" not in item.keywords]
    deselected = [item for item in items if "postgres" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


# --- Many associations at once (background refresh tests, bench/bulk_refresh.py) ------------


def grant_associations(
    provider: LoopbackProvider | TokenServer,
    count: int,
    *,
    prefix: str | None = None,
    backend: str = "demo",
    expires_at: int | None = None,
) -> list[UserSocialAuth]:
    """Create `count` users, each with a real grant at the provider and its association here,
    in bulk (a browser login per user is far too slow for thousands).

    The rows are written the token store's way (normalized, encrypted, CredentialState in
    step); `expires_at` overrides the expiry stored here (the provider's token stays valid).
    """
    import time
    import uuid
    from datetime import datetime

    from django.contrib.auth import get_user_model

    from integrations.models import CredentialState
    from integrations.store.credentials import seal, token_fields_from_response

    prefix = prefix or f"g{uuid.uuid4().hex[:8]}-"
    client_id = MONZO_CLIENT[0] if backend == "monzo" else DEMO_CLIENT[0]
    grants = provider.bulk_grant(count, prefix=prefix, client_id=client_id)
    now = time.time()
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=grant["username"], signup_provider=backend) for grant in grants],
        batch_size=500,
    )
    rows = []
    for user, grant in zip(users, grants, strict=False):
        fields = token_fields_from_response(grant, previous_refresh_token=None, now=now)
        if expires_at is not None:
            fields["expires_at"] = expires_at
        rows.append(
            UserSocialAuth(
                user=user,
                provider=backend,
                uid=grant["user_id"],
                extra_data=seal({**fields, "status": "active", "user_id": grant["user_id"]}),
            )
        )
    associations = UserSocialAuth.objects.bulk_create(rows, batch_size=500)
    CredentialState.objects.bulk_create(
        [
            CredentialState(
                association=association,
                expires_at=datetime.fromtimestamp(association.extra_data["expires_at"], UTC),
                status="active",
            )
            for association in associations
        ],
        batch_size=500,
    )
    return associations


@pytest.fixture(scope="module")
def token_server() -> Iterator[TokenServer]:
    with TokenServer() as server:
        yield server


@pytest.fixture
def fast_provider(token_server: TokenServer, settings) -> TokenServer:
    """The demo provider's declaration, pointed at the fast token server (tests/token_server.py)."""
    token_server.reset(config=True)
    settings.CUSTODIAN_PROVIDERS = {
        "demo": demo_provider_declaration(token_server.base_url, *DEMO_CLIENT)
    }
    return token_server


@pytest.fixture
def granted(provider: LoopbackProvider, db):
    """`granted(count, expires_at=...)`: that many fresh associations with real grants."""

    def _grant(count: int, **kwargs):
        return grant_associations(provider, count, **kwargs)

    return _grant


# --- Rows written by stock Python Social Auth, before the site adopted Custodian --------------

# What a stock site configures to keep refresh tokens (SOCIAL_AUTH_<NAME>_EXTRA_DATA), as
# social-core's Google backend declares it; user_id as Monzo's backend does.
STOCK_EXTRA_DATA = [("refresh_token", "refresh_token", True), ("expires_in", "expires"), "user_id"]


class StockRows:
    """`stock(count, backend="demo")`: that many associations stored the stock PSA way, for
    real: a real token response from the loopback provider, passed through the backend's own
    ``extra_data`` (what social-core's ``load_extra_data`` stores: plaintext tokens,
    ``expires`` relative to ``auth_time``), saved with ``UserSocialAuth.objects.create``.
    `tokens` lists every token handed out, to check that no output shows one."""

    def __init__(self, provider: LoopbackProvider) -> None:
        self.provider = provider
        self.tokens: list[str] = []

    def __call__(self, count: int, backend: str = "demo") -> list[UserSocialAuth]:
        from django.contrib.auth import get_user_model
        from social_django.utils import load_backend, load_strategy

        client_id = MONZO_CLIENT[0] if backend == "monzo" else DEMO_CLIENT[0]
        prefix = f"stock-{backend}-{len(self.tokens)}-"
        rows = []
        for grant in self.provider.bulk_grant(count, prefix=prefix, client_id=client_id):
            response = {key: value for key, value in grant.items() if key != "username"}
            self.tokens += [grant["access_token"], grant["refresh_token"]]
            user = get_user_model().objects.create(username=grant["username"])
            stock_backend = load_backend(load_strategy(), backend, redirect_uri=None)
            extra_data = stock_backend.extra_data(user, grant["user_id"], response, {}, {})
            rows.append(
                UserSocialAuth.objects.create(
                    user=user, provider=backend, uid=grant["user_id"], extra_data=extra_data
                )
            )
        return rows


@pytest.fixture
def stock(settings, provider: LoopbackProvider, db) -> StockRows:
    settings.SOCIAL_AUTH_DEMO_EXTRA_DATA = STOCK_EXTRA_DATA
    return StockRows(provider)
