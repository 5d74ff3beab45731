"""Refresh (or re-check the approval of) many associations at once on a bounded number of
threads, reading them a chunk at a time.

Token calls are network-bound, so threads give the concurrency; each thread has its own
database connection and provider connections, closed when the thread ends (Django opens one
per thread and never closes those by itself). Each thread takes CHUNK ids at a time and reads
their rows in one query: the decision to refresh is made again under each row's lock, so a
row read a moment earlier is good enough to skip the ones that are clearly not due.

One process with threads runs on one core (the GIL); integrations/background/processes.py
spreads the same work over several processes.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.db import connections
from social_django.models import UserSocialAuth

from integrations.background.refresher import Outcome, Refresher, Summary
from integrations.providers.transport import close_thread_session

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=enum.Enum)
CHUNK = 16

# Where threads take their next chunk of ids from: None when there is no more work.
NextChunk = Callable[[], list[int] | None]


def chunks(association_ids: Iterable[int], workers: int) -> list[list[int]]:
    """The ids in consecutive chunks (the most urgent first): CHUNK ids each, fewer when
    there are not enough to keep all `workers` threads busy."""
    ids = list(association_ids)
    size = max(1, min(CHUNK, len(ids) // max(1, workers)))
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def from_list(association_ids: Iterable[int], workers: int) -> NextChunk:
    """A thread-safe chunk source over these ids, for `workers` threads."""
    work: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
    for chunk in chunks(association_ids, workers):
        work.put(chunk)

    def next_chunk() -> list[int] | None:
        try:
            return work.get_nowait()
        except queue.Empty:
            return None

    return next_chunk


def load_associations(ids: list[int]) -> Mapping[int, UserSocialAuth]:
    """The associations of these ids, in one query (gone ones are missing)."""
    return UserSocialAuth.objects.in_bulk(ids)


def refresh_all(
    association_ids: Iterable[int] | NextChunk,
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
        load=load_associations,
    )


def run_all(
    association_ids: Iterable[int] | NextChunk,
    task: Callable[[int, Any], E],
    summary: Summary,
    *,
    error: E,
    concurrency: int = 8,
    on_outcome: Callable[[E], None] | None = None,
    load: Callable[[list[int]], Mapping[int, Any]] | None = None,
) -> Summary:
    """Run `task(id, row)` for every association on up to `concurrency` threads, counting
    what each returns in `summary` (an unexpected exception counts as `error`, and is
    logged). `row` is what `load` read for the id's chunk (None without `load`, or when
    the row is gone)."""
    next_chunk = (
        association_ids if callable(association_ids) else from_list(association_ids, concurrency)
    )
    report_lock = threading.Lock()

    def drain() -> None:
        while (chunk := next_chunk()) is not None:
            try:
                rows = load(chunk) if load is not None else {}
            except Exception:  # the database went away: these ids are not done, and say so
                logger.exception("Could not read associations %s", chunk)
                for _ in chunk:
                    summary.add(error)
                    if on_outcome is not None:
                        with report_lock:
                            on_outcome(error)
                continue
            for pk in chunk:
                try:
                    outcome = task(pk, rows.get(pk))
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
            close_thread_session()

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
