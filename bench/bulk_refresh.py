"""Benchmark background refresh: N due associations refreshed by refresh_tokens' engine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/custodian_bench \\
        .venv/bin/python bench/bulk_refresh.py [--associations 5000] [--latency-ms 20]
        [--concurrency 16] [--naive 200] [--ceiling 1000]

Every association has a real grant at the loopback provider (minted in bulk through its
/_control/bulk_grant: a browser login each would take minutes), and its token is due. Each
token call waits --latency-ms at the provider. Prints refreshes per second, the limit
concurrency / latency, their ratio (goal >= 0.7 at concurrency 16 on PostgreSQL), and double
refreshes (goal 0); then a naive one-by-one loop over a separate subset, for comparison.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import start

PREFIXES = ("bulk-", "naive-", "raw-")


def create(provider, count: int, prefix: str) -> list:
    """Mint `count` grants at the provider and store their associations here, all due."""
    from tests.conftest import grant_associations

    return grant_associations(provider, count, prefix=prefix, expires_at=int(time.time()) - 10)


def forget_previous_runs() -> None:
    from django.contrib.auth import get_user_model

    for prefix in PREFIXES:
        get_user_model().objects.filter(username__startswith=prefix).delete()


def naive_loop(associations) -> float:
    """The obvious loop: refresh_if_due on each association in turn; return seconds taken."""
    from integrations.refreshing.single_flight import refresh_if_due

    started = time.perf_counter()
    for association in associations:
        refresh_if_due(association)
    return time.perf_counter() - started


def provider_ceiling(provider, count: int, concurrency: int) -> float:
    """Refreshes per second the provider alone serves: raw refresh-token calls from
    `concurrency` threads with pooled connections and no Custodian code at all."""
    import threading

    import requests

    grants = provider.bulk_grant(count, prefix=PREFIXES[2])
    token_url = f"{provider.base_url}/oauth2/token"
    client = {"client_id": "custodian-demo", "client_secret": "custodian-demo-secret"}
    lock = threading.Lock()

    def work() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    if not grants:
                        return
                    grant = grants.pop()
                response = session.post(
                    token_url,
                    timeout=30,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": grant["refresh_token"],
                        **client,
                    },
                )
                response.raise_for_status()

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--associations", "-n", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=20, help="per token call")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--naive", type=int, default=200, help="size of the naive loop's subset")
    parser.add_argument(
        "--ceiling",
        type=int,
        default=1000,
        help="raw token calls measuring the provider alone (0: skip)",
    )
    args = parser.parse_args()

    provider = start("bulk-refresh")
    try:
        from django.db import connection

        from integrations.background.due import due_associations
        from integrations.background.pool import refresh_all
        from integrations.background.refresher import Outcome, Refresher

        latency = args.latency_ms / 1000
        forget_previous_runs()
        started = time.perf_counter()
        create(provider, args.associations, PREFIXES[0])
        set_up = time.perf_counter() - started
        print(
            f"database: {connection.vendor}; {args.associations} associations due; "
            f"token-call latency {args.latency_ms} ms; concurrency {args.concurrency}"
        )
        print(
            f"set-up: {args.associations} grants minted at the provider and stored here "
            f"in {set_up:.1f} s"
        )

        provider.reset()
        provider.latency(args.latency_ms)
        started = time.perf_counter()
        due = due_associations(within=600, now=time.time())
        selected = time.perf_counter() - started
        print(f"selection: {len(due)} due associations found in {selected * 1000:.0f} ms")
        started = time.perf_counter()
        summary = refresh_all(
            [item.association_id for item in due],
            Refresher.from_settings(within=600),
            concurrency=args.concurrency,
        )
        elapsed = time.perf_counter() - started
        stats = provider.stats()
        rate = summary[Outcome.REFRESHED] / elapsed
        limit = args.concurrency / latency if latency else float("inf")
        calls = stats["token_calls"]["refresh_token"]
        print(
            f"bulk refresh (refresh_tokens' engine): {summary[Outcome.REFRESHED]} refreshed "
            f"in {elapsed:.1f} s = {rate:.0f} refreshes/s"
        )
        print(f"    outcomes: {summary.line()}")
        print(
            f"    limit concurrency / latency = {args.concurrency} / {latency:.3f} s = "
            f"{limit:.0f} refreshes/s; ratio {rate / limit:.2f} (goal >= 0.70)"
        )
        print(
            f"    double refreshes: {stats['refresh_rejected']} rejected by the provider; "
            f"token calls {calls} - associations {len(due)} = {calls - len(due)} (goal 0 and 0)"
        )

        if args.ceiling:
            provider.reset()
            provider.latency(args.latency_ms)
            ceiling = provider_ceiling(provider, args.ceiling, args.concurrency)
            print(
                f"provider ceiling: {args.ceiling} raw refresh calls straight to its token "
                f"endpoint from {args.concurrency} threads, no Custodian code: "
                f"{ceiling:.0f} refreshes/s; bulk refresh reached {rate / ceiling:.2f} of it"
            )

        if args.naive:
            subset = create(provider, args.naive, PREFIXES[1])
            provider.reset()
            provider.latency(args.latency_ms)
            seconds = naive_loop(subset)
            naive_rate = len(subset) / seconds
            naive_calls = provider.stats()["token_calls"]["refresh_token"]
            print(
                f"naive loop (refresh_if_due one by one) on a separate subset of {len(subset)} "
                f"associations, not all {args.associations}: {naive_rate:.0f} refreshes/s "
                f"({naive_calls} token calls; its limit 1 / latency = "
                f"{1 / latency if latency else float('inf'):.0f}/s)"
            )
            print(f"    bulk refresh was {rate / naive_rate:.1f}x the naive loop's rate")
    finally:
        provider.stop()


if __name__ == "__main__":
    main()
