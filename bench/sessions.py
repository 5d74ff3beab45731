"""Benchmark get_session: hot-path overhead, and herds on one expired token.

    .venv/bin/python bench/sessions.py [--requests 400] [--threads 32] [--processes 8]

Prints figures; asserts nothing about time. Goals: hot-path ratio <= 1.10 with one query per
get_session and none per request; one token call per herd (stock PSA for comparison).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import child_env, connect_user, start


def hot_path(provider, association, requests_count: int) -> None:
    import requests
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations import get_session
    from integrations.store.credentials import read_credentials
    from tests.stub_api import StubAPI

    api = StubAPI()
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = api.base_url
    user = association.user
    token = read_credentials(association.extra_data).access_token
    plain = requests.Session()
    plain.headers["Authorization"] = f"Bearer {token}"

    bound = get_session(user, "demo")

    def ours_per_call() -> None:
        get_session(user, "demo").get("/echo", timeout=10)

    def ours_reused() -> None:
        bound.get("/echo", timeout=10)

    def baseline() -> None:
        plain.get(f"{api.base_url}/echo", timeout=10)

    def ratio(ours) -> float:
        for _ in range(50):  # warm the pools
            ours()
            baseline()
        ratios = []
        for _ in range(5):
            timings = {}
            for name, call in (("ours", ours), ("plain", baseline)):
                started = time.perf_counter()
                for _ in range(requests_count // 5):
                    call()
                timings[name] = time.perf_counter() - started
            ratios.append(timings["ours"] / timings["plain"])
        return statistics.median(ratios)

    per_call, reused = ratio(ours_per_call), ratio(ours_reused)
    with CaptureQueriesContext(connection) as per_session:
        session = get_session(user, "demo")
    with CaptureQueriesContext(connection) as per_request:
        for _ in range(10):
            session.get("/echo")
    api.stop()
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = provider.base_url
    print("(a) hot path, valid token, loopback API")
    print(
        f"    session.get() on one session vs plain requests.Session: ratio {reused:.3f}"
        f" (median of 5 rounds of {requests_count // 5}; goal <= 1.10)"
    )
    print(f"    get_session().get() per call (incl. its one query) vs plain: ratio {per_call:.3f}")
    print(
        f"    queries per get_session: {len(per_session)}; per request: "
        f"{len(per_request) / 10:.1f} (goal 1 and 0)"
    )


def one_refresh_round_trip(association) -> float:
    from integrations import refresh

    samples = []
    for _ in range(5):
        started = time.perf_counter()
        refresh(association, force=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def expire(association) -> None:
    from integrations.store.writes import merge_extra_data

    merge_extra_data(association.pk, {"expires_at": int(time.time()) - 10})


def make_stock_association(provider, username: str):
    """An association in stock PSA's own format (plaintext tokens, expires_in + auth_time),
    already expired, so stock get_access_token() refreshes it."""
    from integrations.store.credentials import read_credentials

    association = connect_user(provider, username)
    credentials = read_credentials(association.extra_data)
    association.extra_data = {
        "access_token": credentials.access_token,
        "refresh_token": credentials.refresh_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "auth_time": int(time.time()) - 7200,
    }
    association.save()
    return association


def run_threads(kind: str, ident: int, count: int):
    from django.db import connection

    from bench._herd import custodian_call, stock_call

    call = stock_call if kind == "stock" else custodian_call
    barrier = threading.Barrier(count)
    results = []

    def member() -> None:
        barrier.wait(timeout=60)
        try:
            results.append(call(ident))
        finally:
            connection.close()

    threads = [threading.Thread(target=member) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_processes(provider, kind: str, ident: int, count: int):
    from bench._herd import process_member

    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(count), context.Queue()
    processes = [
        context.Process(
            target=process_member, args=(child_env(provider), kind, ident, barrier, queue)
        )
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=180) for _ in processes]
    for process in processes:
        process.join()
    return results


def report(label: str, provider, results, round_trip: float) -> None:
    stats = provider.stats()
    outcomes: dict[str, int] = {}
    for outcome, _ in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    slowest = max(seconds for _, seconds in results)
    print(
        f"    {label}: token-endpoint calls {stats['token_calls'].get('refresh_token', 0)}"
        f" (rejected {stats['refresh_rejected']}), outcomes {outcomes},"
        f" slowest caller {slowest / round_trip:.1f}x one refresh round trip"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()

    provider = start("sessions")
    try:
        from django.db import connection

        print(f"database: {connection.vendor}")
        association = connect_user(provider, "alice")
        hot_path(provider, association, args.requests)

        round_trip = one_refresh_round_trip(association)
        print(f"(b) herd on one expired token (one refresh round trip: {round_trip * 1000:.1f} ms)")
        for label, runner in (
            (f"{args.threads} threads", lambda kind, ident: run_threads(kind, ident, args.threads)),
            (
                f"{args.processes} processes",
                lambda kind, ident: run_processes(provider, kind, ident, args.processes),
            ),
        ):
            expire(association)
            provider.reset()
            report(
                f"get_session, {label}",
                provider,
                runner("custodian", association.user_id),
                round_trip,
            )
        print("(c) the same herds through stock Python Social Auth (social.get_access_token)")
        for index, (label, runner) in enumerate(
            (
                (
                    f"{args.threads} threads",
                    lambda kind, ident: run_threads(kind, ident, args.threads),
                ),
                (
                    f"{args.processes} processes",
                    lambda kind, ident: run_processes(provider, kind, ident, args.processes),
                ),
            )
        ):
            stock = make_stock_association(provider, ["bob", "carol"][index])
            provider.reset()
            report(f"stock PSA, {label}", provider, runner("stock", stock.pk), round_trip)
    finally:
        provider.stop()


if __name__ == "__main__":
    main()
