"""A separate OS process of the site that calls the API through get_session (herd tests)."""

from __future__ import annotations

import os
from typing import Any


def call_whoami(env: dict[str, str], user_id: int, barrier: Any, results: Any) -> None:
    """Set up Django from `env`, wait for the others, then call whoami once."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from integrations import get_session

    user = get_user_model().objects.get(pk=user_id)
    barrier.wait(timeout=60)
    try:
        status = get_session(user, "demo").get("/ping/whoami").status_code
        results.put(status)
    except Exception as error:  # reported to the test, which fails on it
        results.put(f"{type(error).__name__}: {error}")
    finally:
        connection.close()


def call_get_access_token(
    env: dict[str, str], user_id: int, provider: str, barrier: Any, results: Any
) -> None:
    """Set up Django from `env`, wait for the others, then ask PSA's own API for a token
    (``user.social_auth.get(provider=…).get_access_token(strategy)``); report it."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from social_django.utils import load_strategy

    user = get_user_model().objects.get(pk=user_id)
    barrier.wait(timeout=60)
    try:
        results.put(user.social_auth.get(provider=provider).get_access_token(load_strategy()))
    except Exception as error:  # reported to the test, which fails on it
        results.put(f"{type(error).__name__}: {error}")
    finally:
        connection.close()
