"""Fixtures: a real OAuth 2.0 authorization server on loopback, and the site pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.test import Client
from social_django.models import UserSocialAuth

from site_config.providers import demo_provider_declaration
from tests.provider import LoopbackProvider

DEMO_CLIENT = ("custodian-demo", "custodian-demo-secret")
MONZO_CLIENT = ("custodian-monzo", "custodian-monzo-secret")


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


def connect(
    client: Client,
    provider: LoopbackProvider,
    backend: str = "demo",
    *,
    username: str = "alice",
    allow: bool = True,
):
    """Run the whole authorization-code flow like a browser; return the callback's response."""
    begin = client.post(f"/login/{backend}/")
    assert begin.status_code == 302, begin.status_code
    callback = urlsplit(provider.authorize(begin["Location"], username=username, allow=allow))
    assert callback.path == f"/complete/{backend}/", callback.path
    return client.get(f"{callback.path}?{callback.query}")


@pytest.fixture
def connected(client: Client, provider: LoopbackProvider, db):
    """Log in through the loopback provider as `username`; return (user, association)."""

    def _connect(backend: str = "demo", username: str = "alice"):
        response = connect(client, provider, backend, username=username)
        assert response.status_code == 302, response.content[:500]
        association = UserSocialAuth.objects.get(provider=backend, uid=f"user_{username}")
        return association.user, association

    return _connect
