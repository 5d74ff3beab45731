"""Re-encrypt every stored token under the first key of CUSTODIAN_ENCRYPTION_KEYS.

Each batch is one transaction over locked rows, and every value written is readable with the
keys in force (the new one is first in the list, the old ones still follow), so the command
can be killed at any point and re-run: no row is ever unreadable, and rows already under the
current key are skipped.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django.db import transaction
from social_django.models import UserSocialAuth

from integrations.store import crypto
from integrations.store.credentials import SECRET_FIELDS
from integrations.store.writes import merge_extra_data


def _reencrypted_fields(extra_data: dict) -> dict[str, str]:
    """Return the secret fields of `extra_data` that are not yet under the current key."""
    return {
        name: crypto.encrypt(crypto.decrypt(value))
        for name, value in extra_data.items()
        if name in SECRET_FIELDS and isinstance(value, str) and value
        and not crypto.is_current(value)
    }


class Command(BaseCommand):
    help = "Re-encrypt all stored tokens under the first key of CUSTODIAN_ENCRYPTION_KEYS."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size: int, **options) -> None:
        ids = list(UserSocialAuth.objects.order_by("pk").values_list("pk", flat=True))
        progress = None
        if sys.stdout.isatty() and options.get("verbosity", 1) > 0:
            from tqdm import tqdm

            progress = tqdm(total=len(ids), unit="association", desc="Re-encrypting")
        rotated = 0
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            with transaction.atomic():
                rows = UserSocialAuth.objects.select_for_update().filter(pk__in=batch)
                for row in rows.only("pk", "extra_data"):
                    fields = _reencrypted_fields(row.extra_data or {})
                    if fields:
                        merge_extra_data(row.pk, fields)
                        rotated += 1
            if progress is not None:
                progress.update(len(batch))
        if progress is not None:
            progress.close()
        self.stdout.write(
            f"{rotated} of {len(ids)} associations re-encrypted; "
            f"{len(ids) - rotated} were already under the current key."
        )
