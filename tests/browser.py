"""Debian's chromium for the browser tests: where it is, how it is started, and one clear line
when it is missing.

`make setup` installs it when it can (see the Makefile's `chromium` target). Where it could
not, Playwright would fail each browser test with a long stack trace about a missing
executable; the `chromium` fixture (tests/conftest.py) fails them first, with the one line
that says what to run. A failure, never a skip: a suite that skips its browser journeys would
pass without having looked at a single page.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

# Overridable so that a test can show what a machine without chromium reports.
CHROMIUM = os.environ.get("CUSTODIAN_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MISSING = (
    "Debian's chromium is missing{where}: "
    'run "sudo apt-get install -y chromium" (or make setup as root)'
)


def missing_chromium(path: str = CHROMIUM) -> str | None:
    """The one-line hint when no runnable chromium is at `path`; None when it is there."""
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return None
    return MISSING.format(where="" if path == "/usr/bin/chromium" else f" (no {path})")


def require_chromium(path: str = CHROMIUM) -> str:
    """Return `path`, or fail the calling test with the one-line hint (no traceback)."""
    problem = missing_chromium(path)
    if problem:
        pytest.fail(problem, pytrace=False)
    return path


def launch(playwright: Any, path: str) -> Any:
    """Start chromium at `path` the way every browser test does."""
    return playwright.chromium.launch(executable_path=path, args=ARGS)
