"""Rewrite the associations stock Python Social Auth stored into Custodian's shape: tokens
encrypted, the expiry as ``expires_at``, a history entry ("adopted") per row.

Run it once after switching a site from stock PSA to Custodian (the rows work before, only
their tokens sit in plaintext)::

    .venv/bin/python manage.py adopt_credentials --dry-run   # count, write nothing
    .venv/bin/python manage.py adopt_credentials

Each row is committed on its own, in pk order: a run that is stopped is finished by running
it again, and a run with nothing left to do says so. Rows whose tokens are encrypted under no
configured key are named (id, provider, uid; never a token) and left as they are. The logic
is in integrations/store/adoption.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from integrations.management.commands.refresh_tokens import positive
from integrations.store.adoption import Outcome, Verdict, adopt_all, count


class Command(BaseCommand):
    help = "Encrypt and normalize the credentials stock Python Social Auth stored (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--provider", help="only this provider's associations")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be adopted, write nothing"
        )
        parser.add_argument(
            "--batch-size", type=positive, default=500,
            help="associations read per query (each is still committed on its own)",
        )

    def handle(self, *args: Any, provider: str | None, dry_run: bool, batch_size: int,
               verbosity: int = 1, **options: Any) -> None:
        progress = self._progress(count(provider=provider), verbosity)
        tally: Counter[Verdict | None] = Counter()
        for outcome in adopt_all(provider=provider, batch_size=batch_size, dry_run=dry_run):
            tally[outcome.verdict] += 1
            self._report(outcome)
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        self.stdout.write(summary(tally, dry_run=dry_run))
        if tally[None]:
            raise CommandError(f"{tally[None]:,} associations could not be adopted; see the log")

    def _report(self, outcome: Outcome) -> None:
        """Name a row that was left as it was, and why; only ids, never a token."""
        row = f"association {outcome.association_id} ({outcome.provider}, uid {outcome.uid})"
        if outcome.verdict is Verdict.UNREADABLE:
            self.stderr.write(
                f"{row}: its tokens cannot be decrypted with CUSTODIAN_ENCRYPTION_KEYS; "
                "left as it is"
            )
        elif outcome.verdict is None:
            self.stderr.write(f"{row}: {outcome.error}; left as it was")

    def _progress(self, total: int, verbosity: int) -> Any:
        """A tqdm bar when stdout is a terminal (never in cron mail or logs)."""
        if not total or verbosity < 1 or not self.stdout.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=total, unit="association", desc="Adopting", file=self.stdout._out)


def summary(tally: Counter[Verdict | None], *, dry_run: bool) -> str:
    """E.g. "Adopted 1,234 associations (56 already in Custodian's shape, 2 unreadable);
    0 errors." """
    adopted = tally[Verdict.ADOPT]
    noun = "association" if adopted == 1 else "associations"
    details = [
        f"{tally[Verdict.CURRENT]:,} already in Custodian's shape",
        f"{tally[Verdict.UNREADABLE]:,} unreadable",
    ]
    if tally[Verdict.TOKENLESS]:
        details.append(f"{tally[Verdict.TOKENLESS]:,} without an OAuth 2.0 token")
    errors = "error" if tally[None] == 1 else "errors"
    if dry_run:
        return (
            f"Dry run: would adopt {adopted:,} {noun} ({', '.join(details)}); nothing written."
        )
    return f"Adopted {adopted:,} {noun} ({', '.join(details)}); {tally[None]:,} {errors}."
