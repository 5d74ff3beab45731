"""Benchmark `manage.py adopt_credentials`: N rows stored the stock PSA way, adopted.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/custodian_bench \\
        .venv/bin/python bench/adoption.py [--associations 5000] [--batch-size 500]

Every row holds a real grant of the loopback provider, stored as social-core's
load_extra_data stores it (plaintext tokens, ``expires`` relative to ``auth_time``) and
indexed as migrations 0003/0004 index it. Prints the adoption's rows per second, then the
second run's (nothing left to adopt) and a dry run's. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import start

PREFIX = "adopt-"
# A stock site's SOCIAL_AUTH_DEMO_EXTRA_DATA (as social-core's Google backend declares it).
STOCK_EXTRA_DATA = [("refresh_token", "refresh_token", True), ("expires_in", "expires"), "user_id"]


def create_stock_rows(provider, count: int) -> None:
    """Mint `count` grants and store them the stock PSA way, in bulk."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from social_django.models import UserSocialAuth
    from social_django.utils import load_backend, load_strategy

    from integrations.models import CredentialState
    from integrations.store.credentials import expires_at_of
    from integrations.store.times import to_datetime

    settings.SOCIAL_AUTH_DEMO_EXTRA_DATA = STOCK_EXTRA_DATA
    backend = load_backend(load_strategy(), "demo", redirect_uri=None)
    grants = provider.bulk_grant(count, prefix=PREFIX)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=grant["username"]) for grant in grants], batch_size=500
    )
    rows = UserSocialAuth.objects.bulk_create(
        [
            UserSocialAuth(
                user=user,
                provider="demo",
                uid=grant["user_id"],
                extra_data=backend.extra_data(user, grant["user_id"], grant, {}, {}),
            )
            for user, grant in zip(users, grants, strict=True)
        ],
        batch_size=500,
    )
    CredentialState.objects.bulk_create(
        [
            CredentialState(association=row, expires_at=to_datetime(expires_at_of(row.extra_data)))
            for row in rows
        ],
        batch_size=500,
    )


def timed(*args: str) -> tuple[float, str]:
    """Run the command; return seconds taken and its summary line."""
    from django.core.management import call_command

    out = io.StringIO()
    started = time.perf_counter()
    call_command("adopt_credentials", *args, stdout=out)
    return time.perf_counter() - started, out.getvalue().strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--associations", "-n", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    provider = start("adoption")
    try:
        from django.contrib.auth import get_user_model
        from django.db import connection

        get_user_model().objects.filter(username__startswith=PREFIX).delete()
        started = time.perf_counter()
        create_stock_rows(provider, args.associations)
        print(
            f"database: {connection.vendor}; {args.associations} rows stored the stock PSA "
            f"way in {time.perf_counter() - started:.1f} s"
        )
        batch = f"--batch-size={args.batch_size}"
        for label, options in (
            ("dry run", ("--dry-run", batch)),
            ("adoption", (batch,)),
            ("second run", (batch,)),
        ):
            seconds, line = timed(*options)
            rate = args.associations / seconds
            print(f"{label}: {seconds:.1f} s = {rate:,.0f} rows/s; {line}")
    finally:
        provider.stop()


if __name__ == "__main__":
    main()
