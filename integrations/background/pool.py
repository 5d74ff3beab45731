"""Refresh (or re-check the approval of) many associations at once on a bounded number of
threads.

Token calls are network-bound, so threads give the concurrency; each thread has its own
database connection, closed when the thread ends (Django opens one per thread and never
closes those by itself).
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import connections

from integrations.background.refresher import Outcome, Refresher, Summary

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=enum.Enum)


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
    return run_all(
        association_ids,
        refresher.refresh,
        Summary(Outcome),
        error=Outcome.ERROR,
        concurrency=concurrency,
        on_outcome=on_outcome,
    )


def run_all(
    association_ids: Iterable[int],
    task: Callable[[int], E],
    summary: Summary,
    *,
    error: E,
    concurrency: int = 8,
    on_outcome: Callable[[E], None] | None = None,
) -> Summary:
    """Run `task` for every association on up to `concurrency` threads, counting what each
    returns in `summary` (an unexpected exception counts as `error`, and is logged)."""
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for pk in association_ids:
        work.put(pk)
    report_lock = threading.Lock()

    def drain() -> None:
        while True:
            try:
                pk = work.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = task(pk)
            except Exception:
                logger.exception("Unexpected error with association %s", pk)
                outcome = error
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
        threading.Thread(target=worker, name=f"background-{index}", daemon=True)
        for index in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary
