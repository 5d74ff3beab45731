"""Benchmark redaction by value: redact() on a 10 KB log text with 10,000 registered secrets.

    .venv/bin/python bench/redaction.py [--secrets 10000] [--kb 10] [--compare]

Prints figures; asserts nothing about time (but checks that every planted secret is masked).
Goal: O(len(text)) whatever the number of secrets, and nothing rebuilt when one is added: a
refresher registers a new token per refresh and logs right after. --compare also times a
compiled alternation of all the values, the obvious alternative.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def per_call(function, *args, repeat: int = 200) -> float:
    """Best-of-5 mean seconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            function(*args)
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def log_text(size: int, planted: list[str]) -> str:
    prefix = "2025-01-01 12:00:00,000"
    lines = [
        f"{prefix} INFO integrations.refreshing.single_flight: Refreshed demo token of 41",
        f'{prefix} DEBUG urllib3.connectionpool: http://127.0.0.1:8001 "POST /oauth2/token"',
        f"{prefix} WARNING integrations.refreshing.single_flight: Refreshing association 7 failed",
        f"{prefix} DEBUG django.template: Exception while resolving variable 'missing'",
    ]
    text: list[str] = []
    index = 0
    while sum(map(len, text)) < size:
        text.append(lines[index % len(lines)])
        index += 1
    step = max(1, len(text) // (len(planted) + 1))
    for number, secret in enumerate(planted, start=1):
        text[number * step] += f" args=('{secret}',) x=-{secret}&y"
    return "\n".join(text)[: size + 200 * len(planted)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    parser.add_argument("--kb", type=int, default=10)
    parser.add_argument("--compare", action="store_true", help="also time a regex alternation")
    options = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
    os.environ.setdefault("SQLITE_PATH", str(Path(tempfile.mkdtemp()) / "bench.sqlite3"))
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from integrations.security import secrets_registry
    from integrations.security.redaction import redact

    values = [secrets.token_urlsafe(30) for _ in range(options.secrets)]
    start = time.perf_counter()
    for value in values:
        secrets_registry.register(value)
    registering = (time.perf_counter() - start) / len(values)
    planted = values[:: max(1, len(values) // 5)][:5]
    text = log_text(options.kb * 1024, planted)
    masked = redact(text)
    assert not any(secret in masked for secret in planted), "a planted secret was not masked"
    clean = log_text(options.kb * 1024, [])
    line = "2025-01-01 12:00:00,000 INFO integrations.refreshing.single_flight: Refreshed 41"

    def churn() -> None:  # what a refresher does: one new token, one log line
        secrets_registry.register(secrets.token_urlsafe(30))
        redact(line)

    print(
        f"{len(secrets_registry.REGISTRY)} secrets registered "
        f"({registering * 1e6:.1f} µs each); text {len(text) / 1024:.1f} KB"
    )
    print(f"redact(), 5 secrets planted   {per_call(redact, text) * 1e3:8.3f} ms per call")
    print(f"redact(), no secret in it     {per_call(redact, clean) * 1e3:8.3f} ms per call")
    print(f"  of which by value (mask)    {per_call(secrets_registry.mask, text) * 1e3:8.3f} ms")
    print(f"redact() of one log line      {per_call(redact, line, repeat=2000) * 1e6:8.1f} µs")
    print(f"register a token + log a line {per_call(churn, repeat=2000) * 1e6:8.1f} µs")
    if options.compare:
        start = time.perf_counter()
        alternation = re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))
        compiling = time.perf_counter() - start
        print(
            f"regex alternation: compile {compiling * 1e3:.0f} ms (on every change), "
            f"{per_call(alternation.sub, '', text, repeat=3) * 1e3:.1f} ms per call"
        )


if __name__ == "__main__":
    main()
