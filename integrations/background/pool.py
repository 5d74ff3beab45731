"""Refresh many associations at once on a bounded number of threads.

Token calls are network-bound, so threads give the concurrency; each thread has its own
database connection, closed when the thread ends (Django opens one per thread and never
closes those by itself).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable

from django.db import connections

from integrations.background.refresher import Outcome, Refresher, Summary

logger = logging.getLogger(__name__)


def refresh_all(
    association_ids: Iterable[int],
    refresher: Refresher,
    *,
    concurrency: int = 8,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Refresh every association (each when still due); return the counts of outcomes.

    `on_outcome` is called once per association, from the worker threads, one at a time.
    With `concurrency` 1 the work runs in the calling thread (and on its connection).
    """
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for pk in association_ids:
        work.put(pk)
    summary = Summary()
    report_lock = threading.Lock()

    def drain() -> None:
        while True:
            try:
                pk = work.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = refresher.refresh(pk)
            except Exception:
                logger.exception("Unexpected error refreshing association %s", pk)
                outcome = Outcome.ERROR
            summary.add(outcome)
            if on_outcome is not None:
                with report_lock:
                    on_outcome(outcome)

    def worker() -> None:
        try:
            drain()
        finally:
            connections.close_all()

    if concurrency <= 1:
        drain()
        return summary
    threads = [
        threading.Thread(target=worker, name=f"refresh-{index}", daemon=True)
        for index in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary
