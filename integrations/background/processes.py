"""Spread one refresh run over several processes, so that one host uses all its cores.

Threads in one process share one core (the GIL): past a few hundred refreshes a second the
refreshing process, not the provider, becomes the limit. `refresh_in_processes` starts N
worker processes (spawned: each sets Django up from the same settings module and
environment), hands them chunks of ids through a queue (the most urgent first, whoever is
free takes the next), and gathers their outcomes (a few at a time), so that the counts and
the progress bar are the same as with threads alone.

Each process runs its share of the concurrency on its threads, with a throttle of its own
(integrations/background/throttle.py): a provider's Retry-After is honoured by every
process that is told it, and each backs off on its own from what it sees.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

# Nothing from Django or the app at the top: a spawned process imports this module to find
# `_child` before Django is set up.
if TYPE_CHECKING:
    from integrations.background.refresher import Outcome, Summary

logger = logging.getLogger(__name__)

_DONE = "done"
POLL_SECONDS = 0.5
REPORT_EVERY = 16
REPORT_SECONDS = 0.2


def refresh_in_processes(
    association_ids: Iterable[int],
    *,
    processes: int,
    concurrency: int,
    within: float,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Refresh these associations on `processes` processes with `concurrency` refreshes in
    flight in all (shared out); return the counts. When a process dies unexpectedly the
    others are stopped, and every id not done counts as an error."""
    from integrations.background.pool import chunks
    from integrations.background.refresher import Outcome, Summary

    ids = list(association_ids)
    summary = Summary(Outcome)
    if not ids:
        return summary
    processes = max(1, min(processes, concurrency, len(ids)))
    # The concurrency shared out: never more in flight than asked for in all.
    shares = [concurrency // processes + (index < concurrency % processes)
              for index in range(processes)]
    context = multiprocessing.get_context("spawn")
    work: Any = context.Queue()
    results: Any = context.Queue()
    # The processes' log records come here and go out through this process's handlers: one
    # stream (above the progress bar on a terminal), already redacted where they were made.
    logs: Any = context.Queue()
    listener = logging.handlers.QueueListener(logs, _ToOwnLoggers())
    listener.start()
    for chunk in chunks(ids, concurrency):
        work.put(chunk)
    work.put(None)  # every reader puts it back: all threads of all processes see the end
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "site_config.settings")
    children = [
        context.Process(
            target=_child,
            args=(work, results, logs, share, processes, within, settings_module),
            name=f"refresh-{index}",
            daemon=True,
        )
        for index, share in enumerate(shares)
    ]
    for child in children:
        child.start()
    finished = 0
    while finished < len(children):
        try:
            message = results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if any(child.exitcode not in (None, 0) for child in children):
                # One died (killed, out of memory) perhaps holding the queue or its end
                # marker: the others could wait for ever. Stop them; the ids not reported
                # are counted as errors below, and the next run takes them again.
                for child in children:
                    child.terminate()
                break
            if not any(child.is_alive() for child in children):
                break
            continue
        if message == _DONE:
            finished += 1
            continue
        for name in message:
            outcome = Outcome[name]
            summary.add(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    for child in children:
        child.join()
    listener.stop()
    # Chunks nobody took (a process died) must not keep this process from exiting.
    work.cancel_join_thread()
    work.close()
    for _ in range(len(ids) - summary.total):
        summary.add(Outcome.ERROR)
        if on_outcome is not None:
            on_outcome(Outcome.ERROR)
    if summary[Outcome.ERROR]:
        crashed = [child.name for child in children if child.exitcode]
        if crashed:
            logger.error("Refresh processes ended abnormally: %s", ", ".join(crashed))
    return summary


class _ToOwnLoggers(logging.Handler):
    """Hands a record from a worker process to this process's logger of the same name."""

    def handle(self, record: logging.LogRecord) -> bool:
        logging.getLogger(record.name).handle(record)
        return True


def _log_to(logs: Any) -> None:
    """In a worker process: every record goes to the parent through `logs`, through the
    filters of the handlers it replaces first (the site's redact secrets: this process knows
    the tokens it decrypted, the parent does not)."""
    handler = logging.handlers.QueueHandler(logs)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger_ in loggers:
        if isinstance(logger_, logging.Logger) and logger_.handlers:
            for replaced in logger_.handlers:
                for kept in replaced.filters:
                    if kept not in handler.filters:
                        handler.addFilter(kept)
            logger_.handlers = [handler]


def _child(
    work: Any,
    results: Any,
    logs: Any,
    concurrency: int,
    processes: int,
    within: float,
    settings_module: str,
) -> None:
    """One worker process: Django set up from the parent's settings, then threads draining
    the shared queue of chunks; each outcome is sent back as it happens. The configured rate
    limits are shared out: each process keeps to its part of them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django

    django.setup()
    _log_to(logs)
    from django.conf import settings

    from integrations.background.pool import refresh_all
    from integrations.background.rate_limit import RateLimiter
    from integrations.background.refresher import Refresher
    from integrations.background.throttle import Throttle

    rates = settings.CUSTODIAN_REFRESH_RATE_LIMITS
    limiter = RateLimiter({name: rate / processes for name, rate in rates.items()})

    def next_chunk() -> list[int] | None:
        chunk = work.get()
        if chunk is None:
            work.put(None)
        return chunk

    reporter = _Reporter(results)
    try:
        refresh_all(
            next_chunk,
            Refresher.from_settings(
                within=within, limiter=limiter, throttle=Throttle(concurrency)
            ),
            concurrency=concurrency,
            on_outcome=reporter.add,
        )
    finally:
        reporter.flush()
        results.put(_DONE)


class _Reporter:
    """Sends outcomes to the parent a few at a time: a message per refresh, each waking this
    process's queue thread and the parent, cost more CPU than some refreshes' own statements.
    The parent's count (and progress bar) lags by at most REPORT_EVERY outcomes or
    REPORT_SECONDS."""

    def __init__(self, results: Any) -> None:
        self._results = results
        self._pending: list[str] = []
        self._sent_at = time.monotonic()
        self._lock = threading.Lock()

    def add(self, outcome: Any) -> None:
        with self._lock:
            self._pending.append(outcome.name)
            if (
                len(self._pending) >= REPORT_EVERY
                or time.monotonic() - self._sent_at >= REPORT_SECONDS
            ):
                self._send()

    def flush(self) -> None:
        with self._lock:
            self._send()

    def _send(self) -> None:
        if self._pending:
            self._results.put(self._pending)
            self._pending = []
        self._sent_at = time.monotonic()
