"""Refresh, in the background, every access token that expires soon (and idle grants due a
keep-alive), so users' requests never wait for a refresh and rotating grants never lapse; and
re-check every association awaiting approval in the provider's app (Monzo), so an approval
given there is noticed within one run.

Safe beside web traffic and beside another run of itself: each refresh goes through the same
single-flight `refresh_if_due` as get_session. From cron, every few minutes::

    */5 * * * *  cd /srv/custodian && .venv/bin/python manage.py refresh_tokens

On a host with several cores, `--processes N` (one per core) spreads the work over N
processes; `--concurrency` is the most refreshes in flight in all of them together.

Monzo lets a client read the full transaction history only within 5 minutes of
authentication: where people connect Monzo, run it every minute or two.

Exit status is non-zero only for unexpected errors; provider trouble and revoked grants are
normal outcomes, counted in the summary and recorded in each association's history.
"""

from __future__ import annotations

import re
import time
from argparse import ArgumentTypeError
from collections import Counter
from contextlib import nullcontext
from typing import IO, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.background.approvals import ApprovalChecker, ApprovalOutcome, check_all
from integrations.background.due import awaiting_approval, due_associations
from integrations.background.listing import due_lines
from integrations.background.pool import refresh_all
from integrations.background.processes import refresh_in_processes
from integrations.background.rate_limit import RateLimiter
from integrations.background.refresher import DEFAULT_CONCURRENCY, Outcome, Refresher
from integrations.background.throttle import Throttle
from integrations.management.progress import progress_bar
from integrations.providers.registry import keepalive_periods

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """Parse "600", "600s", "10m", "1h", "2d" into seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ArgumentTypeError(f"not a duration: {text!r} (examples: 600, 10m, 1h)")
    return float(match[1]) * _UNITS[match[2]]


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ArgumentTypeError("must be at least 1")
    return value


class Command(BaseCommand):
    help = (
        "Refresh access tokens expiring soon (and idle ones due a keep-alive), single-flight; "
        "re-check associations awaiting approval in the provider's app."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--within", type=duration, default=float(settings.CUSTODIAN_REFRESH_WITHIN),
            help="refresh tokens expiring within this long (seconds, or 10m, 1h; default "
            "CUSTODIAN_REFRESH_WITHIN, 10 minutes)",
        )
        parser.add_argument(
            "--concurrency", type=positive, default=DEFAULT_CONCURRENCY,
            help="at most this many refreshes in flight, in all processes together (threads; "
            "fewer while the provider is slow or refusing: see Backpressure in the README)",
        )
        parser.add_argument(
            "--processes", type=positive, default=1,
            help="spread the refreshes over this many processes (one per core uses them all)",
        )
        parser.add_argument("--provider", help="only this provider's associations")
        parser.add_argument(
            "--dry-run", action="store_true",
            help="list what is due or awaiting approval; refresh and check nothing",
        )

    def handle(self, *args, within: float, concurrency: int, processes: int = 1,
               provider: str | None, dry_run: bool, verbosity: int = 1, **options) -> None:
        started = time.monotonic()
        now = time.time()
        keepalive = keepalive_periods()
        due = due_associations(within=within, now=now, provider=provider, keepalive=keepalive)
        reasons = Counter(item.reason for item in due)
        why = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        awaiting = awaiting_approval(provider=provider)
        if dry_run:
            if verbosity >= 2:
                for line in due_lines(due, now=now, keepalive=keepalive):
                    self.stdout.write(line)
                for pk in awaiting:
                    self.stdout.write(f"association {pk}: awaiting approval")
            waiting = f" {len(awaiting)} awaiting approval; none checked." if awaiting else ""
            self.stdout.write(
                f"Dry run: {len(due)} due ({why or 'none'}); nothing refreshed.{waiting}"
            )
            return

        # One limiter for the run: refreshes and approval checks share the provider's rate.
        limiter = RateLimiter(settings.CUSTODIAN_REFRESH_RATE_LIMITS)
        ids = [item.association_id for item in due]
        with self._progress(len(due), verbosity) as progress:
            tick = (lambda outcome: progress.update(1)) if progress else None
            if processes > 1:
                summary = refresh_in_processes(
                    ids, processes=processes, concurrency=concurrency, within=within,
                    on_outcome=tick,
                )
            else:
                refresher = Refresher.from_settings(
                    within=within, limiter=limiter, throttle=Throttle(concurrency)
                )
                summary = refresh_all(ids, refresher, concurrency=concurrency, on_outcome=tick)
        if verbosity > 0:
            self.stdout.write(
                f"{len(due)} due ({why or 'none'}): {summary.line()} "
                f"in {time.monotonic() - started:.1f}s"
            )
        # After the refreshes: a token due in this run is checked with its new value.
        approvals = check_all(awaiting, ApprovalChecker(limiter=limiter), concurrency=concurrency)
        if verbosity > 0 and awaiting:
            self.stdout.write(f"{len(awaiting)} awaiting approval: {approvals.line()}")
        errors = summary[Outcome.ERROR] + approvals[ApprovalOutcome.ERROR]
        if errors:
            raise CommandError(f"{errors} unexpected errors while refreshing; see the log")

    def _progress(self, total: int, verbosity: int):
        """A tqdm bar when stdout is a terminal (never in cron mail or logs), with the log
        lines of the run printed above it; otherwise no bar (None)."""
        if not total or verbosity < 1 or not self.stdout.isatty():
            return nullcontext(None)
        terminal = cast(IO[str], self.stdout._out)
        return progress_bar(total, desc="Refreshing", unit="token", file=terminal)
