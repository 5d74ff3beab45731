"""A progress bar for management commands on a terminal, with log lines printed above it.

Log records reach the terminal through the site's console handler while the bar is drawn on
the same screen; written as they come, a record lands in the middle of the bar's line and the
bar goes on on the next. Here each console handler writes through the bar instead: clear the
bar, write the record, draw the bar again, all under tqdm's lock.

tqdm has this (`tqdm.contrib.logging.logging_redirect_tqdm`), but it replaces each console
handler by one of its own that keeps the formatter and drops the handler's filters, and the
site's console handler redacts secrets with a filter. So the handlers stay, with their
level, filters and formatter, and only the stream they write to is wrapped.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, Any


@contextmanager
def progress_bar(total: int, *, desc: str, unit: str, file: IO[str]) -> Iterator[Any]:
    """A tqdm bar on `file` (a terminal) for the duration, console logging printed above it;
    the bar is closed (left on screen, complete) afterwards."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc, file=file)
    with ExitStack() as stack:
        stack.callback(bar.close)
        stack.enter_context(logging_above(bar))
        yield bar


@contextmanager
def logging_above(bar: Any) -> Iterator[None]:
    """Make every console logging handler write above `bar` until the block ends."""
    swapped = []
    try:
        for handler in _console_handlers():
            swapped.append((handler, handler.setStream(_AboveBar(handler.stream, bar))))
        yield
    finally:
        for handler, stream in reversed(swapped):
            handler.setStream(stream)


def _console_handlers() -> list[logging.StreamHandler]:
    """The stream handlers, on any logger, that write to the process's stdout or stderr or
    to a terminal (not files: a log file never shows the bar)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found: dict[int, logging.StreamHandler] = {}
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ) and _is_console(handler.stream):
                found[id(handler)] = handler
    return list(found.values())


def _is_console(stream: Any) -> bool:
    if stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class _AboveBar:
    """The stream a console handler writes to while the bar is shown: each write clears the
    bar, goes to the real stream, and draws the bar again below it."""

    def __init__(self, stream: IO[str], bar: Any) -> None:
        self.stream = stream
        self.bar = bar

    def write(self, text: str) -> int:
        with self.bar.get_lock():
            self.bar.clear()
            self.stream.write(text)
            self.stream.flush()
            self.bar.refresh()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())
