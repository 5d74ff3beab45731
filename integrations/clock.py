"""The one place that reads the time, so tests can move it instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_source: Callable[[], float] = time.time


def now() -> float:
    """Return the current UTC time in epoch seconds."""
    return _source()


@contextmanager
def frozen(at: float) -> Iterator[None]:
    """Pin `now()` to `at` for the duration of the block (tests)."""
    global _source
    previous = _source
    _source = lambda: at  # noqa: E731
    try:
        yield
    finally:
        _source = previous
