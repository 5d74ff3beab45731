"""Refresh (or re-check the approval of) many associations at once on a bounded number of
threads, a chunk at a time.

Token calls are network-bound, so threads give the concurrency; each thread has its own
database connection and provider connections, closed when the thread ends (Django opens one
per thread and never closes those by itself).

On PostgreSQL (run_chunks), a few threads each hold a chunk of CHUNK rows, locked with one
statement, and `concurrency` call threads (a CallPool, no database connection) make the
chunk's token calls; the chunk's tokens and history are then written in one statement each
(integrations/refreshing/batch.py). Elsewhere (run_all), each thread takes CHUNK ids, reads
their rows in one query, and refreshes them one by one, each under its own lock: the decision
is made again under the lock, so a row read a moment earlier is good enough to skip the ones
that are clearly not due.

One process with threads runs on one core (the GIL); integrations/background/processes.py
spreads the same work over several processes.
"""
from __future__ import annotations

import enum
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from django.db import connections
from social_django.models import UserSocialAuth

from integrations.background.refresher import Attempt, Outcome, Refresher, Summary
from integrations.providers.transport import close_thread_session
from integrations.refreshing import batch

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
    settle: Callable[[int, Attempt], Outcome] | None = None,
) -> Summary:
    """Refresh every association (each when still due); return the counts of outcomes.

    `settle(id, attempt)` turns each one's first try into its outcome: by default it retries
    transient failures (Refresher.retried); Celery's batch collects them for its own retry.
    `on_outcome` is called once per association, from the worker threads, one at a time.
    With `concurrency` 1 the work runs in the calling thread (and on its connection).

    Where a chunk of rows can be locked at once (PostgreSQL), a few threads hold the chunks
    and `concurrency` others make the token calls (run_chunks); elsewhere each of
    `concurrency` threads refreshes one association at a time.
    """
    finish = settle or refresher.retried
    summary = Summary(Outcome)
    if concurrency > 1 and batch.supported():
        return run_chunks(
            association_ids,
            lambda chunk, run: {
                pk: finish(pk, attempt) for pk, attempt in refresher.try_chunk(chunk, run).items()
            },
            summary,
            error=Outcome.ERROR,
            concurrency=concurrency,
            on_outcome=on_outcome,
        )
    return run_all(
        association_ids,
        lambda pk, row: finish(pk, refresher.try_once(pk, row)),
        summary,
        error=Outcome.ERROR,
        concurrency=concurrency,
        on_outcome=on_outcome,
        load=load_associations,
    )


class CallPool:
    """Threads that make token calls for the threads holding the chunks' row locks.

    A call touches no database, so these threads hold no connection; each keeps its own
    provider connections alive (integrations/providers/transport.py) and closes them when
    the pool closes.
    """

    def __init__(self, size: int) -> None:
        self._work: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._serve, name=f"provider-call-{index}", daemon=True)
            for index in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, calls: list[tuple[Any, Callable[[], Any]]]) -> list[Any]:
        """Make these calls on the pool's threads; return what each returned, or the
        exception it raised, in order."""
        futures: list[Future[Any]] = []
        for _, work in calls:
            future: Future[Any] = Future()
            self._work.put((work, future))
            futures.append(future)
        return [future.result() for future in futures]

    def _serve(self) -> None:
        try:
            while (item := self._work.get()) is not None:
                work, future = item
                try:
                    future.set_result(work())
                except Exception as error:
                    future.set_result(error)
        finally:
            close_thread_session()
            connections.close_all()

    def close(self) -> None:
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> CallPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_chunks(
    association_ids: Iterable[int] | NextChunk,
    task: Callable[[list[int], Callable[..., list[Any]]], Mapping[int, E]],
    summary: Summary,
    *,
    error: E,
    concurrency: int = 8,
    on_outcome: Callable[[E], None] | None = None,
) -> Summary:
    """Run `task(chunk, run)` for every chunk of ids on a few threads, each holding a chunk
    (and its row locks), with `run` making its token calls on a CallPool of `concurrency`
    threads; count the outcome of each id in `summary` (an id the task returns nothing for,
    or an unexpected exception, counts as `error`, and is logged).

    Twice as many chunks as there are calls in flight are held at once, so that the calls
    of one go on while another writes its results and locks the next.
    """
    next_chunk = (
        association_ids if callable(association_ids) else from_list(association_ids, concurrency)
    )
    report = _reporter(summary, on_outcome)
    holders = max(2, math.ceil(2 * concurrency / CHUNK))

    def holder(calls: CallPool) -> None:
        try:
            while (chunk := next_chunk()) is not None:
                try:
                    outcomes = task(chunk, calls.run)
                except Exception:
                    logger.exception("Unexpected error with associations %s", chunk)
                    outcomes = {}
                for pk in chunk:
                    report(outcomes.get(pk, error))
        finally:
            connections.close_all()

    with CallPool(concurrency) as calls:
        _on_threads(lambda: holder(calls), holders)
    return summary


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
    report = _reporter(summary, on_outcome)

    def drain() -> None:
        while (chunk := next_chunk()) is not None:
            try:
                rows = load(chunk) if load is not None else {}
            except Exception:  # the database went away: these ids are not done, and say so
                logger.exception("Could not read associations %s", chunk)
                for _ in chunk:
                    report(error)
                continue
            for pk in chunk:
                try:
                    outcome = task(pk, rows.get(pk))
                except Exception:
                    logger.exception("Unexpected error with association %s", pk)
                    outcome = error
                report(outcome)

    def worker() -> None:
        try:
            drain()
        finally:
            connections.close_all()
            close_thread_session()

    if concurrency <= 1:
        drain()
    else:
        _on_threads(worker, concurrency)
    return summary


def _reporter(summary: Summary, on_outcome: Callable[[E], None] | None) -> Callable[[E], None]:
    """Count an outcome in `summary` and hand it to `on_outcome`, one at a time, from any
    thread."""
    lock = threading.Lock()

    def report(outcome: E) -> None:
        summary.add(outcome)
        if on_outcome is not None:
            with lock:
                on_outcome(outcome)

    return report


def _on_threads(target: Callable[[], None], count: int) -> None:
    """Run `target` on `count` threads at once; return when all are done."""
    threads = [
        threading.Thread(target=target, name=f"background-{index}", daemon=True)
        for index in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
