"""Benchmark background refresh: `manage.py refresh_tokens` on N due tokens, against a provider
far faster than it, so that the figure is Custodian's.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/custodian_bench \\
        .venv/bin/python bench/bulk_refresh.py [--associations 5000] [--latency-ms 20]
        [--concurrency 16] [--processes 2] [--repeat 1] [--overload] [--site PATH]

The provider is tests/token_server.py: it rotates refresh tokens and detects reuse, injects
its latency without spending CPU, and its own ceiling is measured first (raw refresh calls
from a client cheaper than it, bench/provider_ceiling.py). The refresh runs exactly as an
operator runs it: the management command in its own processes, production settings (DEBUG
off, a real encryption key, LOG_LEVEL=INFO with the log written to a file). Printed:

- refreshes per second, the limit min(concurrency / latency, provider ceiling) and the ratio;
- CPU milliseconds per refresh in the refreshing processes (start-up excluded: measured by a
  run with nothing due) and in PostgreSQL (all its processes), and the provider's;
- grants lost: stored refresh tokens the provider no longer honours, invalid_grant answers,
  reuse detected, answers the provider sent to nobody.

`--repeat N` measures N times and adds the median and range of each figure (this machine's
speed varies from one minute to the next, by up to a fifth).
`--overload`: the scenario of a provider that cannot keep up: capped at 50 refreshes/s
(queue of at most 100 ms, then 429 with Retry-After: 1), 2,000 tokens due, concurrency 32.
`--site PATH`: run another checkout's manage.py (same database schema), for before/after.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench._setup import _create_database  # noqa: E402
from bench.provider_ceiling import measure  # noqa: E402
from tests.token_server import TokenServer  # noqa: E402

PREFIX = "bulk-"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def production_env(server: TokenServer, scratch: Path) -> dict[str, str]:
    """Production settings for this process and the command's: DEBUG off, a fresh key."""
    from cryptography.fernet import Fernet

    env = {
        "DJANGO_SETTINGS_MODULE": "site_config.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CUSTODIAN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CUSTODIAN_DEMO_PROVIDER": "true",
        "DEMO_PROVIDER_URL": server.base_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }
    if not os.environ.get("DATABASE_URL"):
        env["SQLITE_PATH"] = str(scratch / "site.sqlite3")
    return env


def postgres_cpu_seconds() -> float:
    """CPU time PostgreSQL has spent so far: its live processes', plus what the server
    process collected from the ones that ended (a connection's backend exits with it).
    0 when PostgreSQL does not run on this machine."""
    processes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "comm").read_text().strip()
        except OSError:
            continue
        if command.startswith("postgres"):
            processes[int(stat.parent.name)] = fields
    total = 0
    for fields in processes.values():
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if int(fields[1]) not in processes:  # the server: add its ended children's
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / CLOCK_TICKS


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(site: Path, env: dict[str, str], log: Path, *args: str) -> tuple[str, float]:
    """Run refresh_tokens; return its summary line and the CPU seconds of its processes."""
    before = children_cpu_seconds()
    with log.open("a") as stderr:
        result = subprocess.run(
            [sys.executable, "manage.py", "refresh_tokens", *args],
            cwd=site, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=stderr,
            text=True, check=True,
        )
    return result.stdout.strip(), children_cpu_seconds() - before


def due_tokens(server: TokenServer, count: int) -> list[int]:
    """Mint `count` grants and store them, all due; return the association ids."""
    from django.contrib.auth import get_user_model

    from tests.conftest import grant_associations

    get_user_model().objects.filter(username__startswith=PREFIX).delete()
    rows = grant_associations(server, count, prefix=PREFIX, expires_at=int(time.time()) - 10)
    return [row.pk for row in rows]


def grants_lost(server: TokenServer, ids: list[int]) -> int:
    """Stored refresh tokens the provider does not honour any more."""
    from social_django.models import UserSocialAuth

    from integrations.store.credentials import read_credentials

    tokens = [
        read_credentials(data).refresh_token or ""
        for data in UserSocialAuth.objects.filter(pk__in=ids).values_list("extra_data", flat=True)
    ]
    return len(ids) - server.current(tokens)["current"]


def refresh_window(ids: list[int]) -> float:
    """Seconds from the first refresh to the last (their history entries)."""
    from django.db.models import Max, Min

    from integrations.models import CredentialEvent

    span = CredentialEvent.objects.filter(
        association_id__in=ids, kind=CredentialEvent.Kind.REFRESHED
    ).aggregate(first=Min("created"), last=Max("created"))
    return (span["last"] - span["first"]).total_seconds()


def timeouts(ids: list[int]) -> int:
    from integrations.models import CredentialEvent

    return CredentialEvent.objects.filter(
        association_id__in=ids, kind=CredentialEvent.Kind.REFRESH_FAILED,
        detail__startswith="timeout",
    ).count()


def provider_ceiling(server: TokenServer, concurrency: int, latency_ms: int) -> float:
    """The provider alone: refreshes/s it serves to a cheap client at `concurrency`."""
    grants = server.bulk_grant(max(4000, concurrency * 100), prefix="ceiling-")
    server.reset()
    server.configure(latency_ms=latency_ms)
    return measure(server.base_url, [grant["refresh_token"] for grant in grants],
                   concurrency=concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--associations", "-n", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=20, help="per token call")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--overload", action="store_true", help="the overload scenario instead")
    parser.add_argument("--site", type=Path, default=REPO_ROOT, help="the checkout to run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure this many times; print median and range"
    )
    args = parser.parse_args()
    process_args = ["--processes", str(args.processes)] if args.processes > 1 else []

    scratch = Path(tempfile.mkdtemp(prefix="custodian-bench-refresh-"))
    log = scratch / "refresh.log"
    with TokenServer() as server:
        env = production_env(server, scratch)
        os.environ.update(env)
        if os.environ.get("DATABASE_URL"):
            _create_database(os.environ["DATABASE_URL"])
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        print(f"database: {connection.vendor}; site: {args.site}; log: {log}")

        if args.overload:
            overload(server, env, log, args)
            return

        latency = args.latency_ms / 1000
        ceilings = {
            c: provider_ceiling(server, c, args.latency_ms) for c in (args.concurrency, 256)
        }
        ceiling = max(ceilings.values())
        print(
            f"provider alone (raw refresh calls, {args.latency_ms} ms latency): "
            + ", ".join(f"{rate:,.0f}/s at concurrency {c}" for c, rate in ceilings.items())
        )

        limit = min(args.concurrency / latency, ceiling)
        print(f"\nrefresh_tokens --concurrency {args.concurrency} {' '.join(process_args)}:")
        runs = []
        for number in range(1, args.repeat + 1):
            runs.append(measure_once(server, env, log, args, process_args))
            print(f"  run {number} of {args.repeat}:")
            report(runs[-1], args, limit, ceiling)
        if len(runs) > 1:
            summary(runs, limit)


def measure_once(
    server: TokenServer, env: dict[str, str], log: Path, args: argparse.Namespace,
    process_args: list[str],
) -> dict[str, Any]:
    """One measurement: two runs, N/5 then N due tokens; the difference of their CPU time
    is that of 4N/5 refreshes, whatever starting Django and the processes costs."""
    from django.db import connection

    small = max(1, args.associations // 5)
    measured = {}
    for count in (small, args.associations):
        ids = due_tokens(server, count)
        connection.close()
        server.reset()
        server.configure(latency_ms=args.latency_ms)
        pg_before = postgres_cpu_seconds()
        provider_before = server.stats()["cpu_seconds"]
        started = time.perf_counter()
        line, cpu = run_command(
            args.site, env, log, "--concurrency", str(args.concurrency), *process_args
        )
        wall = time.perf_counter() - started
        stats = server.stats()
        measured[count] = {
            "cpu": cpu, "pg": postgres_cpu_seconds() - pg_before,
            "provider": stats["cpu_seconds"] - provider_before,
        }
    refreshed = int(re.search(r"refreshed (\d+)", line)[1])  # type: ignore[index]
    window = refresh_window(ids)
    big = measured[args.associations]
    extra = args.associations - small
    return {
        "line": line, "refreshed": refreshed, "window": window, "wall": wall,
        "rate": refreshed / window if window else float("nan"),
        "cpu_ms": (big["cpu"] - measured[small]["cpu"]) / extra * 1000,
        "pg_ms": (big["pg"] - measured[small]["pg"]) / extra * 1000,
        "provider_ms": big["provider"] / refreshed * 1000,
        "startup_ms": big["cpu"] / refreshed * 1000,
        "small": small, "lost": grants_lost(server, ids), "stats": stats,
    }


def report(run: dict[str, Any], args: argparse.Namespace, limit: float, ceiling: float) -> None:
    stats = run["stats"]
    print(f"    {run['line']}")
    print(
        f"    {run['refreshed']} refreshed in {run['window']:.1f} s (first to last; "
        f"{run['wall']:.1f} s with start-up) = {run['rate']:.0f} refreshes/s"
    )
    print(
        f"    limit min(concurrency / latency = {args.concurrency * 1000 / args.latency_ms:.0f}, "
        f"provider ceiling = {ceiling:,.0f}) = {limit:.0f}/s; ratio {run['rate'] / limit:.2f}"
    )
    print(
        f"    CPU per refresh (runs of {args.associations} and {run['small']}, the difference): "
        f"refreshing processes {run['cpu_ms']:.2f} ms, PostgreSQL {run['pg_ms']:.2f} ms, "
        f"provider {run['provider_ms']:.2f} ms; with start-up, the processes took "
        f"{run['startup_ms']:.2f} ms per refresh"
    )
    print(
        f"    grants lost: {run['lost']} (invalid_grant {stats['invalid_grant']}, reuse "
        f"detected {stats['reuse_detected']}, answers lost {stats['answers_lost']}); "
        f"token calls {stats['token_calls']['refresh_token']}"
    )


def summary(runs: list[dict[str, Any]], limit: float) -> None:
    """Median and range over the runs: this machine's speed varies from minute to minute."""

    def spread(values: list[float], form: str) -> str:
        return (
            f"median {statistics.median(values):{form}} "
            f"(from {min(values):{form}} to {max(values):{form}})"
        )

    rates = [run["rate"] for run in runs]
    print(f"\n  over {len(runs)} runs:")
    print(f"    refreshes/s {spread(rates, '.0f')}")
    print(f"    ratio to the limit {spread([rate / limit for rate in rates], '.2f')}")
    cpu = [run["cpu_ms"] for run in runs]
    print(f"    CPU ms per refresh, refreshing processes {spread(cpu, '.2f')}")
    print(f"    CPU ms per refresh, PostgreSQL {spread([run['pg_ms'] for run in runs], '.2f')}")
    print(f"    grants lost in all: {sum(run['lost'] for run in runs)}")


def overload(server: TokenServer, env: dict[str, str], log: Path, args: argparse.Namespace) -> None:
    """2,000 due, the provider capped at 50/s, concurrency 32."""
    from django.db import connection

    count, rate, concurrency = 2000, 50, 32
    ids = due_tokens(server, count)
    connection.close()
    server.reset()
    server.configure(latency_ms=args.latency_ms, rate=rate, queue_ms=100, retry_after=1)
    started = time.perf_counter()
    line, _ = run_command(args.site, env, log, "--concurrency", str(concurrency))
    wall = time.perf_counter() - started
    stats = server.stats()
    print(
        f"overload: {count} due, provider capped at {rate}/s (queue 100 ms, then 429 with "
        f"Retry-After: 1), {args.latency_ms} ms latency, --concurrency {concurrency}:"
    )
    print(f"    {line}")
    print(
        f"    {wall:.1f} s ({count / wall:.1f} refreshes/s; the cap allows {rate}); provider "
        f"refused {stats['rate_limited']} calls with 429"
    )
    print(
        f"    grants lost {grants_lost(server, ids)}; invalid_grant {stats['invalid_grant']}; "
        f"reuse detected {stats['reuse_detected']}; timeouts {timeouts(ids)}; answers lost "
        f"{stats['answers_lost']}"
    )


if __name__ == "__main__":
    main()
