"""Delete credential history (CredentialEvent) older than the retention period.

The retention is CUSTODIAN_EVENT_RETENTION_DAYS (default 365); --days overrides it for one run
and --dry-run only counts. Events go in batches, so a large backlog never holds a long lock.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.models import CredentialEvent
from integrations.store.times import now_datetime


class Command(BaseCommand):
    help = (
        "Delete credential history events older than CUSTODIAN_EVENT_RETENTION_DAYS days "
        "(or --days)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="keep this many days of history instead of CUSTODIAN_EVENT_RETENTION_DAYS",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="only say how many events would be deleted"
        )
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, days: int | None, dry_run: bool, batch_size: int, **options) -> None:
        days = settings.CUSTODIAN_EVENT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("the retention must be at least 1 day")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        cutoff = now_datetime() - timedelta(days=days)
        old = CredentialEvent.objects.filter(created__lt=cutoff)
        when = f"older than {days} days (before {cutoff:%Y-%m-%d %H:%M} UTC)"
        if dry_run:
            self.stdout.write(f"Would delete {old.count()} credential events {when}.")
            return
        deleted = 0
        while True:
            batch = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not batch:
                break
            deleted += CredentialEvent.objects.filter(pk__in=batch).delete()[0]
        self.stdout.write(f"Deleted {deleted} credential events {when}.")
