"""Shared set-up for benchmarks: a scratch database, the loopback provider, Django."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def start(label: str):
    """Start a loopback provider and configure Django on a scratch database; return the provider.

    PostgreSQL when DATABASE_URL is set (its database is used as it is: point it at a scratch
    one), else a fresh SQLite file.
    """
    sys.path.insert(0, str(REPO_ROOT))
    from tests.provider import LoopbackProvider

    scratch = Path(tempfile.mkdtemp(prefix=f"custodian-bench-{label}-"))
    provider = LoopbackProvider(db_path=scratch / "provider.sqlite3").start()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
    # Benchmarks run the development settings (DEBUG defaults to off), also when started
    # directly rather than through `make bench`.
    os.environ.setdefault("DEBUG", "true")
    os.environ["DEMO_PROVIDER_URL"] = provider.base_url
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("SQLITE_PATH", str(scratch / "site.sqlite3"))
    if os.environ.get("DATABASE_URL"):
        _create_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if os.environ.get("DATABASE_URL"):
        from social_django.models import UserSocialAuth

        UserSocialAuth.objects.all().delete()
    return provider


def _create_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` when it does not exist yet."""
    from urllib.parse import urlsplit

    import psycopg

    name = urlsplit(url).path.lstrip("/")
    admin_url = url[: url.rindex("/")] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def child_env(provider) -> dict[str, str]:
    """Environment for a worker process that must see the same database and provider."""
    keys = ("DATABASE_URL", "SQLITE_PATH", "DJANGO_SETTINGS_MODULE", "DEBUG")
    env = {key: os.environ[key] for key in keys if key in os.environ}
    env.update(DEMO_PROVIDER_URL=provider.base_url, LOG_LEVEL="WARNING")
    return env


def connect_user(provider, username: str):
    """Log a new site user in through the provider (the real flow); return the association."""
    from django.test import Client
    from social_django.models import UserSocialAuth

    from tests.conftest import connect

    response = connect(Client(), provider, "demo", username=username)
    assert response.status_code == 302, response.status_code
    return UserSocialAuth.objects.get(provider="demo", uid=f"user_{username}")
