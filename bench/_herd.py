"""Herd members for bench/sessions.py, usable as threads or as separate processes."""

from __future__ import annotations

import os
import time
from typing import Any


def custodian_call(user_id: int) -> tuple[str, float]:
    """Call whoami through get_session; return (outcome, seconds)."""
    from django.contrib.auth import get_user_model

    from integrations import get_session

    user = get_user_model().objects.get(pk=user_id)
    started = time.perf_counter()
    try:
        outcome = str(get_session(user, "demo").get("/ping/whoami").status_code)
    except Exception as error:
        outcome = type(error).__name__
    return outcome, time.perf_counter() - started


def stock_call(association_id: int) -> tuple[str, float]:
    """Ask stock Python Social Auth for a token (it refreshes when expired), then call whoami."""
    import requests
    from social_django.models import UserSocialAuth
    from social_django.utils import load_strategy

    social = UserSocialAuth.objects.get(pk=association_id)
    started = time.perf_counter()
    try:
        token = social.get_access_token(load_strategy())
        base = os.environ["DEMO_PROVIDER_URL"]
        status = requests.get(
            f"{base}/ping/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).status_code
        outcome = str(status)
    except Exception as error:
        outcome = type(error).__name__
    return outcome, time.perf_counter() - started


def process_member(env: dict[str, str], kind: str, ident: int, barrier: Any, results: Any) -> None:
    """Entry point of one herd process."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    barrier.wait(timeout=120)
    try:
        results.put((stock_call if kind == "stock" else custodian_call)(ident))
    finally:
        connection.close()
