"""The loopback token server's ceiling: refreshes per second it serves with no Custodian code.

    .venv/bin/python bench/provider_ceiling.py [--grants 20000] [--latency-ms 20]
        [--concurrency 16 64 256]

A benchmark of background refresh measures our refresher only if the provider is far faster;
this measures the provider (tests/token_server.py) alone, with a client cheaper than it: raw
HTTP/1.1 on `concurrency` keep-alive connections, each sending refresh calls one after
another, no JSON decoding, nothing but a check that every answer was 200. Prints, for each
concurrency, refreshes per second, the bound concurrency / latency, and the server's and the
client's CPU time per refresh. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOKEN_PATH = "/oauth2/token"
CONNECT_TIMEOUT = 10.0


class CeilingError(RuntimeError):
    """An answer was not 200, or a connection broke: the figure would be meaningless."""


class _Caller(asyncio.Protocol):
    """One keep-alive connection sending the next refresh as soon as an answer is complete.

    A protocol, not streams: no task or future per call, so the client costs less per call
    than the server it measures.
    """

    def __init__(self, tokens: Iterator[str], form_tail: str, head: str) -> None:
        self.tokens = tokens
        self.form_tail = form_tail
        self.head = head
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[int] = self.loop.create_future()
        self.calls = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(CeilingError(f"the connection broke after {self.calls} calls: {exc!r}"))

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def abandon(self) -> None:
        """Stop: another connection failed, the run is void."""
        self.done.cancel()
        if self.transport is not None:
            self.transport.close()

    def send_next(self) -> None:
        token = next(self.tokens, None)
        if token is None:
            self.done.set_result(self.calls)
            assert self.transport is not None
            self.transport.close()
            return
        body = f"grant_type=refresh_token&refresh_token={quote(token)}{self.form_tail}"
        assert self.transport is not None
        self.transport.write(f"{self.head}{len(body)}\r\n\r\n{body}".encode())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self.fail(CeilingError(f"an answer without Content-Length: {head!r}"))
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else None])
        if len(buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        if status != 200:
            body = bytes(buffer[end + 4 : end + 4 + length])
            self.fail(CeilingError(f"the token server answered {status}: {body[:300]!r}"))
            return
        del buffer[: end + 4 + length]
        self.calls += 1
        self.send_next()


async def _measure(
    host: str, port: int, tokens: Iterator[str], concurrency: int, client: tuple[str, str]
) -> int:
    client_id, client_secret = client
    form_tail = f"&client_id={quote(client_id)}&client_secret={quote(client_secret)}"
    head = (
        f"POST {TOKEN_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
    )
    loop = asyncio.get_running_loop()
    callers = []
    for _ in range(concurrency):
        _, caller = await asyncio.wait_for(
            loop.create_connection(lambda: _Caller(tokens, form_tail, head), host, port),
            CONNECT_TIMEOUT,
        )
        callers.append(caller)
    for caller in callers:
        caller.send_next()
    finished, _ = await asyncio.wait(
        [caller.done for caller in callers], return_when=asyncio.FIRST_EXCEPTION
    )
    for future in finished:
        error = future.exception()
        if error is not None:
            for caller in callers:
                caller.abandon()
            raise error
    calls = sum(future.result() for future in finished)
    return calls


def measure(
    base_url: str,
    refresh_tokens: Sequence[str],
    *,
    concurrency: int,
    client: tuple[str, str] = ("custodian-demo", "custodian-demo-secret"),
) -> float:
    """Refresh every token once, over `concurrency` keep-alive connections; return refreshes
    per second. Raises CeilingError unless every answer was 200."""
    address = urlsplit(base_url)
    if address.hostname is None or address.port is None:
        raise ValueError(f"not a base URL with a host and a port: {base_url!r}")
    tokens = iter(refresh_tokens)
    started = time.perf_counter()
    calls = asyncio.run(
        _measure(
            address.hostname, address.port, tokens, min(concurrency, len(refresh_tokens)), client
        )
    )
    elapsed = time.perf_counter() - started
    if calls != len(refresh_tokens):
        raise CeilingError(f"{calls} answers for {len(refresh_tokens)} calls")
    return calls / elapsed


def main() -> None:
    from tests.token_server import TokenServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", "-n", type=int, default=20_000, help="refreshes per run")
    parser.add_argument("--latency-ms", type=float, default=20, help="per token call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    args = parser.parse_args()

    with TokenServer() as server:
        server.configure(latency_ms=args.latency_ms)
        print(
            f"token server {server.base_url}; {args.grants} refreshes per run; "
            f"latency {args.latency_ms:g} ms per token call"
        )
        for concurrency in args.concurrency:
            grants = server.bulk_grant(args.grants, prefix=f"ceiling-{concurrency}-")
            tokens = [grant["refresh_token"] for grant in grants]
            server.reset()
            server_cpu = server.stats()["cpu_seconds"]
            client_cpu = time.process_time()
            rate = measure(server.base_url, tokens, concurrency=concurrency)
            client_cpu = time.process_time() - client_cpu
            stats = server.stats()
            server_cpu = stats["cpu_seconds"] - server_cpu
            refreshed = stats["refreshed"]
            if refreshed != len(tokens):
                raise CeilingError(f"the server counted {refreshed} refreshes, not {len(tokens)}")
            bound = (
                f"{concurrency / (args.latency_ms / 1000):8.0f}/s"
                if args.latency_ms > 0
                else "       -"
            )
            print(
                f"concurrency {concurrency:4d}: {rate:8.0f} refreshes/s "
                f"(bound concurrency/latency {bound}); server CPU "
                f"{server_cpu * 1000 / refreshed:.3f} ms/refresh, client CPU "
                f"{client_cpu * 1000 / refreshed:.3f} ms/refresh; "
                f"max in flight {stats['max_in_flight']}"
            )


if __name__ == "__main__":
    main()
