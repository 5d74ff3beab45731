"""Herds: many callers released at once on one token, in threads or in processes of the site.

Single flight is only proven by a crowd that really arrives together: each herd waits on a
barrier, then every member makes its call. Results come back in a list, an exception as its
repr, so a test's one assertion shows what each member got.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def thread_herd(size: int, call: Callable[[], Any]) -> list[Any]:
    """Run `call` in `size` threads released together; return what each got."""
    barrier = threading.Barrier(size)
    results: list[Any] = []

    def member() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(call())
        except Exception as error:  # the caller's assertion shows it
            results.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=member) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def site_env(settings: Any, provider: Any, **extra: str) -> dict[str, str]:
    """The environment of a site process on the test's PostgreSQL database and provider."""
    db = settings.DATABASES["default"]
    return {
        "DJANGO_SETTINGS_MODULE": "site_config.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DEMO_PROVIDER_URL": provider.base_url,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def process_herd(size: int, target: Callable[..., None], *args: Any) -> list[Any]:
    """Run `target(*args, barrier, results)` in `size` site processes released together
    (tests/herd_worker.py); return what each put in `results`."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(size)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*args, barrier, results)) for _ in range(size)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    return outcomes
