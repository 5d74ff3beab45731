"""`manage.py refresh_tokens` on a terminal, run for real in a pseudo-terminal against this
test's database and the loopback provider.

What a person sees is what the terminal draws, so the output is replayed on a small model of
one (carriage return, line feed, overwriting): the progress bar must end up as one intact line,
with every log line printed whole above it, never spliced into it. The dry run's lines must
say whose association is due, where, until when and why, without a token.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import pty
import re
import secrets
import select
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from social_django.models import UserSocialAuth

from integrations.management.progress import progress_bar
from integrations.security.redaction import RedactingFilter
from integrations.security.secrets_registry import register
from integrations.store.credentials import read_credentials
from integrations.store.writes import merge_extra_data
from tests.conftest import command_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = 150
BAR = re.compile(r"Refreshing: +\d+%\|.*\| *\d+/\d+ \[.*\]")
LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+: .+")
SUMMARY = re.compile(r"\d+ due \(.*\): refreshed \d+, .* in \d+\.\ds")


def in_terminal(*args: str, settings, provider, env: dict[str, str] | None = None):
    """Run `manage.py refresh_tokens *args` with a pseudo-terminal as stdin, stdout and
    stderr (as from an interactive shell); return its exit status and what it drew.

    System checks are skipped: on this development configuration they print a warning about
    the derived encryption key, which is not what is looked at here.
    """
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    environment = command_env(settings, provider.base_url, **{"LOG_LEVEL": "INFO", **(env or {})})
    process = subprocess.Popen(
        [sys.executable, "manage.py", "refresh_tokens", "--skip-checks", *args],
        cwd=ROOT, env=environment, stdin=follower, stdout=follower, stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    drawn = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command closed its end of the terminal
                break
            if not chunk:
                break
            drawn += chunk
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    return status, drawn.decode()


def screen(drawn: str) -> list[str]:
    """The lines a terminal shows after drawing `drawn` (lines wider than it are not wrapped:
    the test's terminal is wide enough for every line drawn)."""
    assert "\x1b" not in drawn, repr(drawn)  # one bar on its line: no cursor movement needed
    lines, column = [""], 0
    for char in drawn:
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("")
            column = 0
        else:
            line = lines[-1].ljust(column)
            lines[-1] = line[:column] + char + line[column + 1:]
            column += 1
    return [line.rstrip() for line in lines if line.strip()]


@pytest.mark.parametrize("processes", [1, 2])
def test_log_lines_print_above_one_intact_progress_bar(granted, provider, settings, processes):
    rows = granted(8, expires_at=int(time.time()) - 10)
    for row in rows:  # each one logs a warning as its grant turns out to be gone
        provider.revoke_grant(row.user.username)

    status, drawn = in_terminal(
        "--concurrency=2", f"--processes={processes}", settings=settings, provider=provider
    )

    lines = screen(drawn)
    assert status == 0, lines
    refreshed = [line for line in lines if "needs reconnecting: invalid_grant" in line]
    assert len(refreshed) == len(rows), lines
    for line in lines:  # every line is one thing: a whole log line, the bar, or the summary
        assert LOG.fullmatch(line) or BAR.fullmatch(line) or SUMMARY.fullmatch(line), line
        assert not (LOG.match(line) and "Refreshing:" in line), line
    bars = [line for line in lines if BAR.fullmatch(line)]
    assert len(bars) == 1 and "100%" in bars[0] and "8/8" in bars[0], lines
    assert lines.index(bars[0]) > max(lines.index(line) for line in refreshed)
    assert SUMMARY.fullmatch(lines[-1]) and "reauth required 8" in lines[-1]
    # The bar was drawn while the log lines came, each time cleared before one was printed.
    assert drawn.count("Refreshing:") > len(rows)
    tokens = [
        secret
        for row in UserSocialAuth.objects.filter(pk__in=[row.pk for row in rows])
        for secret in (read_credentials(row.extra_data).access_token,)
    ]
    assert not any(token in drawn for token in tokens)


def test_dry_run_lists_each_due_association_with_its_facts(granted, provider, settings):
    now = int(time.time())
    expired = granted(1, expires_at=now - 10)[0]
    soon = granted(1, expires_at=now + 300)[0]
    idle = granted(1, expires_at=now + 7200)[0]
    merge_extra_data(idle.pk, {"refreshed_at": now - 3 * 86400})
    granted(1, expires_at=now + 7200)  # neither expiring nor idle: not listed
    before = {row.pk: UserSocialAuth.objects.get(pk=row.pk).extra_data for row in (expired, soon)}

    status, drawn = in_terminal(
        "--dry-run", "-v", "2", settings=settings, provider=provider,
        env={"CUSTODIAN_KEEPALIVE": '{"demo": 172800}'},
    )

    lines = screen(drawn)
    assert status == 0, lines
    listed = [line for line in lines if line.startswith("association ")]
    assert len(listed) == 3, lines

    def utc(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def line_of(row: UserSocialAuth) -> str:
        (line,) = [line for line in listed if line.startswith(f"association {row.pk}:")]
        assert f"user {row.user.username} (id {row.user_id})" in line, line
        assert f"provider demo, uid {row.uid}" in line, line
        return line

    # The spans count from when the command ran (a moment after this test wrote the rows).
    ago = re.search(rf"expires {utc(now - 10)}, due: expiring \(expired (\d+)s ago\)$",
                    line_of(expired))
    assert ago and 10 <= int(ago[1]) < 120, line_of(expired)
    assert re.search(rf"expires {utc(now + 300)}, due: expiring \(in 4m\)$", line_of(soon))
    assert line_of(idle).endswith(
        f"expires {utc(now + 7200)}, due: keep-alive (last refreshed {utc(now - 3 * 86400)}, "
        "3d ago; every 2d)"
    )
    assert lines[-1] == "Dry run: 3 due (2 expiring, 1 keepalive); nothing refreshed."
    secrets = [
        secret
        for row in UserSocialAuth.objects.all()
        for credentials in (read_credentials(row.extra_data),)
        for secret in (credentials.access_token, credentials.refresh_token)
    ]
    assert secrets and not any(secret in drawn for secret in secrets if secret)
    for pk, extra_data in before.items():
        assert UserSocialAuth.objects.get(pk=pk).extra_data == extra_data
    assert provider.stats()["token_calls"].get("refresh_token", 0) == 0


def test_log_records_above_the_bar_keep_their_handlers_redaction():
    """The console handler stays the site's own while the bar is up: its filter still masks a
    token that reaches a log message (tqdm's own redirect would drop that filter)."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, token = Terminal(), secrets.token_urlsafe(24)
    register(token)
    handler = logging.StreamHandler(terminal)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tests.progress")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with progress_bar(3, desc="Refreshing", unit="token", file=terminal) as bar:
            bar.update(1)
            logger.warning("a token %s in a message", token)
            bar.update(2)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    assert handler.stream is terminal  # given back
    drawn = terminal.getvalue()
    assert token not in drawn
    lines = screen(drawn)
    assert len(lines) == 2, lines
    assert lines[0].startswith("WARNING tests.progress: a token ") and "Refreshing" not in lines[0]
    assert BAR.fullmatch(lines[1]) and "3/3" in lines[1], lines
