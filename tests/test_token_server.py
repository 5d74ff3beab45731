"""The loopback token server (tests/token_server.py): rotation and reuse detection, client
authentication, latency that costs no CPU, the rate cap, lost answers, its control plane,
and an HTTP server that survives bad input.

No database and no demo provider: the suite's autouse fixture that starts one is replaced
here by a no-op. Latencies are real time (they stand for the network), kept short.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.token_server import TokenServer, TokenServerError

DEMO_CLIENT = ("custodian-demo", "custodian-demo-secret")
REUSED = {"error": "invalid_grant", "error_description": "refresh token reused"}
TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def site_uses_loopback_provider() -> None:
    """Replaces conftest's: these tests need neither the demo provider nor Django settings."""


@pytest.fixture(scope="module")
def server() -> Iterator[TokenServer]:
    with TokenServer() as started:
        yield started
        assert not started.stderr(), "the token server wrote to stderr (a bug of its own)"


@pytest.fixture(autouse=True)
def fresh(server: TokenServer) -> TokenServer:
    """Counters at zero and default settings for every test (grants stay: each test mints
    its own under its own prefix)."""
    server.reset(config=True)
    return server


# --- helpers --------------------------------------------------------------------------------


def call(
    server: TokenServer,
    method: str,
    path: str,
    *,
    form: dict[str, str] | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request on its own connection; the body as JSON when it is JSON, else bytes."""
    headers = dict(headers or {})
    if form is not None:
        body = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    content: Any = raw
    if answer_headers.get("content-type") == "application/json":
        content = json.loads(raw)
    return response.status, answer_headers, content


def refresh(
    server: TokenServer,
    refresh_token: str,
    *,
    client: tuple[str, str] = DEMO_CLIENT,
    basic: bool = False,
) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    headers = {}
    if basic:
        credentials = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {credentials}"
    else:
        form.update(client_id=client[0], client_secret=client[1])
    status, _, content = call(server, "POST", "/oauth2/token", form=form, headers=headers)
    return status, content


def whoami(server: TokenServer, access_token: str) -> int:
    return call(server, "GET", "/ping/whoami", headers={"Authorization": f"Bearer {access_token}"})[
        0
    ]


def token_request(refresh_token: str) -> bytes:
    body = urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": DEMO_CLIENT[0],
            "client_secret": DEMO_CLIENT[1],
        }
    )
    return (
        "POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, body


def herd(server: TokenServer, requests: list[bytes]) -> list[tuple[float, int, dict[str, str]]]:
    """Send the requests at once, each on its own connection opened beforehand; return for
    each the seconds until its answer was complete, its status and its headers."""

    async def run() -> list[tuple[float, int, dict[str, str]]]:
        streams = [await asyncio.open_connection(server.host, server.port) for _ in requests]
        started = time.perf_counter()

        async def one(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
        ) -> tuple[float, int, dict[str, str]]:
            writer.write(request)
            raw = await asyncio.wait_for(reader.read(), TIMEOUT)
            elapsed = time.perf_counter() - started
            writer.close()
            status, headers, _ = parse_answer(raw)
            return elapsed, status, headers

        return await asyncio.gather(
            *(
                one(reader, writer, request)
                for (reader, writer), request in zip(streams, requests, strict=True)
            )
        )

    return asyncio.run(run())


def raw_exchange(server: TokenServer, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- grants and rotation --------------------------------------------------------------------


def test_bulk_grant_has_the_demo_providers_shape(server: TokenServer) -> None:
    grants = server.bulk_grant(3, prefix="shape-", client_id="custodian-demo")
    assert [grant["username"] for grant in grants] == ["shape-0", "shape-1", "shape-2"]
    assert set(grants[0]) == {
        "username",
        "user_id",
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "scope",
    }
    assert grants[1]["user_id"] == "user_shape-1"
    assert grants[0]["token_type"] == "Bearer"
    assert grants[0]["expires_in"] == 3600
    assert grants[0]["scope"] == "read write"
    assert len({grant["refresh_token"] for grant in grants}) == 3


def test_rotation_then_reuse_revokes_the_whole_grant(server: TokenServer) -> None:
    (grant,) = server.bulk_grant(1, prefix="rotate-")
    status, first = refresh(server, grant["refresh_token"])
    assert status == 200
    assert set(first) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert first["token_type"] == "Bearer"
    assert first["expires_in"] == 3600
    assert first["scope"] == "read write"
    assert first["refresh_token"] != grant["refresh_token"]
    assert first["access_token"] != grant["access_token"]
    assert whoami(server, first["access_token"]) == 200
    assert whoami(server, grant["access_token"]) == 401  # replaced by the rotation

    status, second = refresh(server, first["refresh_token"])
    assert status == 200

    assert refresh(server, grant["refresh_token"]) == (400, REUSED)
    # The whole grant is gone: even the newest refresh token and access token.
    assert refresh(server, second["refresh_token"]) == (400, {"error": "invalid_grant"})
    assert whoami(server, second["access_token"]) == 401
    stats = server.stats()
    assert stats["refreshed"] == 2
    assert stats["reuse_detected"] == 1
    assert stats["invalid_grant"] == 2
    assert stats["token_calls"] == {"refresh_token": 4}


def test_unknown_refresh_token(server: TokenServer) -> None:
    assert refresh(server, "no-such-token") == (400, {"error": "invalid_grant"})
    stats = server.stats()
    assert (stats["invalid_grant"], stats["reuse_detected"], stats["refreshed"]) == (1, 0, 0)


@pytest.mark.parametrize("basic", [False, True], ids=["body", "basic"])
def test_wrong_client(server: TokenServer, basic: bool) -> None:
    (grant,) = server.bulk_grant(1, prefix=f"client-{basic:d}-")
    for client in [("custodian-demo", "wrong"), ("someone-else", "custodian-demo-secret")]:
        assert refresh(server, grant["refresh_token"], client=client, basic=basic) == (
            401,
            {"error": "invalid_client"},
        )
    # The refused calls did not touch the grant.
    status, _ = refresh(server, grant["refresh_token"], basic=basic)
    assert status == 200
    assert server.stats()["invalid_client"] == 2


def test_json_body_and_other_grant_types(server: TokenServer) -> None:
    (grant,) = server.bulk_grant(1, prefix="json-")
    payload = {
        "grant_type": "refresh_token",
        "refresh_token": grant["refresh_token"],
        "client_id": DEMO_CLIENT[0],
        "client_secret": DEMO_CLIENT[1],
    }
    status, _, content = call(
        server,
        "POST",
        "/oauth2/token",
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    assert content["refresh_token"] != grant["refresh_token"]
    form = {**payload, "grant_type": "authorization_code", "code": "C1"}
    assert call(server, "POST", "/oauth2/token", form=form)[::2] == (
        400,
        {"error": "unsupported_grant_type"},
    )


# --- latency, capacity, lost answers --------------------------------------------------------


def test_latency_is_honoured_and_costs_no_cpu(server: TokenServer) -> None:
    latency, calls = 0.2, 40
    grants = server.bulk_grant(calls, prefix="latency-")
    server.configure(latency_ms=latency * 1000)
    cpu = server.stats()["cpu_seconds"]
    answers = herd(server, [token_request(grant["refresh_token"]) for grant in grants])
    stats = server.stats()
    assert [status for _, status, _ in answers] == [200] * calls
    assert min(elapsed for elapsed, _, _ in answers) >= latency
    assert stats["max_in_flight"] == calls  # all waited at once
    # 8 s of latency in all; the server's CPU time grew by a few milliseconds.
    assert stats["cpu_seconds"] - cpu < 0.05 * latency * calls


def test_rate_cap_queues_then_refuses(server: TokenServer) -> None:
    rate, queue_ms, calls = 20, 200, 30
    grants = server.bulk_grant(calls, prefix="cap-")
    config = server.configure(rate=rate, queue_ms=queue_ms, retry_after=3)
    assert config == {"latency_ms": 0, "rate": rate, "queue_ms": queue_ms, "retry_after": 3}
    answers = herd(server, [token_request(grant["refresh_token"]) for grant in grants])
    served = sorted(elapsed for elapsed, status, _ in answers if status == 200)
    refused = [headers for _, status, headers in answers if status == 429]
    assert len(served) + len(refused) == calls
    assert refused
    assert {headers["retry-after"] for headers in refused} == {"3"}
    # Slots 50 ms apart, a queue of 200 ms at most: 5 served (6 if the clock allows it),
    # answered over ~200 ms, not at once.
    assert 2 <= len(served) <= 1 + rate * queue_ms / 1000 + 1
    assert served[-1] - served[0] >= 0.8 * (len(served) - 1) / rate
    assert (len(served) - 1) / (served[-1] - served[0]) <= rate * 1.25
    stats = server.stats()
    assert stats["rate_limited"] == len(refused)
    assert stats["refreshed"] == len(served)


def test_refusals_come_at_once_and_the_queue_drains(server: TokenServer) -> None:
    *grants, later = server.bulk_grant(5, prefix="drain-")
    server.configure(rate=2, queue_ms=0, retry_after=7)
    answers = herd(server, [token_request(grant["refresh_token"]) for grant in grants])
    assert sorted(status for _, status, _ in answers) == [200, 429, 429, 429]
    assert {headers.get("retry-after") for _, status, headers in answers if status == 429} == {"7"}
    assert max(elapsed for elapsed, _, _ in answers) < 0.4  # refused at once, not queued
    time.sleep(0.55)  # the next slot (0.5 s after the first) is free again
    assert refresh(server, later["refresh_token"])[0] == 200
    assert server.stats()["rate_limited"] == 3


def test_a_client_gone_during_the_latency_has_lost_the_grant(server: TokenServer) -> None:
    (grant,) = server.bulk_grant(1, prefix="lost-")
    server.configure(latency_ms=400)
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(token_request(grant["refresh_token"]))
        time.sleep(0.1)  # processed (rotated), the answer still waiting for its latency
    wait_for(lambda: server.stats()["answers_lost"] == 1)
    stats = server.stats()
    assert stats["rotations_lost"] == 1
    assert stats["refreshed"] == 1
    assert stats["in_flight"] == 0
    assert server.current([grant["refresh_token"]]) == {
        "current": 0,
        "used": 1,
        "revoked": 0,
        "unknown": 0,
    }


def test_keep_alive_and_pipelining(server: TokenServer) -> None:
    grants = server.bulk_grant(2, prefix="pipe-")
    requests = [token_request(grant["refresh_token"]) for grant in grants]
    keep_alive = requests[0].replace(b"Connection: close\r\n", b"")
    server.configure(latency_ms=50)  # the first answer waits: the second stays queued
    answers = raw_exchange(server, keep_alive + requests[1])
    assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert answers.index(b"Connection: close") > answers.rindex(b"HTTP/1.1 200")
    connection = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/_control/stats")
            assert connection.getresponse().read()
            sockets.append(connection.sock)
        assert sockets[0] is not None
        assert sockets == [sockets[0]] * 3  # one connection throughout
    finally:
        connection.close()


# --- revocation, the API, the control plane -------------------------------------------------


def test_current_counts(server: TokenServer) -> None:
    kept, rotated, reused = server.bulk_grant(3, prefix="current-")
    _, after_rotation = refresh(server, rotated["refresh_token"])
    _, after_reuse = refresh(server, reused["refresh_token"])
    refresh(server, reused["refresh_token"])  # reuse: that grant is revoked
    counts = server.current(
        [
            kept["refresh_token"],
            rotated["refresh_token"],
            after_rotation["refresh_token"],
            reused["refresh_token"],
            after_reuse["refresh_token"],
            "never-issued",
        ]
    )
    assert counts == {"current": 2, "used": 1, "revoked": 2, "unknown": 1}


@pytest.mark.parametrize("kind", ["refresh_token", "access_token"])
def test_revoke(server: TokenServer, kind: str) -> None:
    (grant,) = server.bulk_grant(1, prefix=f"revoke-{kind[0]}-")
    form = {"token": grant[kind], "client_id": DEMO_CLIENT[0], "client_secret": "wrong"}
    assert call(server, "POST", "/oauth2/revoke_token/", form=form)[::2] == (
        401,
        {"error": "invalid_client"},
    )
    assert whoami(server, grant["access_token"]) == 200
    form["client_secret"] = DEMO_CLIENT[1]
    status, headers, content = call(server, "POST", "/oauth2/revoke_token/", form=form)
    assert (status, headers["content-length"], content) == (200, "0", b"")
    assert whoami(server, grant["access_token"]) == 401
    assert refresh(server, grant["refresh_token"]) == (400, {"error": "invalid_grant"})
    assert server.current([grant["refresh_token"]])["revoked"] == 1
    # RFC 7009 §2.2: an unknown token is answered 200 too.
    form["token"] = "never-issued"
    assert call(server, "POST", "/oauth2/revoke_token/", form=form)[0] == 200


def test_whoami(server: TokenServer) -> None:
    (grant,) = server.bulk_grant(1, prefix="who-")
    status, _, content = call(
        server, "GET", "/ping/whoami", headers={"Authorization": f"Bearer {grant['access_token']}"}
    )
    assert status == 200
    assert content["user_id"] == "user_who-0"
    assert content["username"] == "who-0"
    assert whoami(server, "not-a-token") == 401
    assert call(server, "GET", "/ping/whoami")[0] == 401


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("bulk_grant", {"count": 0}),
        ("bulk_grant", {"count": "5"}),
        ("bulk_grant", {"count": True}),
        ("bulk_grant", {"count": 100_001}),
        ("bulk_grant", {"count": 1, "prefix": "Bad!"}),
        ("bulk_grant", {"count": 1, "client_id": "custodian-monzo"}),
        ("config", {"latency_ms": -1}),
        ("config", {"rate": "fast"}),
        ("config", {"retry_after": 1.5}),
        ("config", {"latency": 20}),
        ("current", {"refresh_tokens": "R1"}),
        ("current", {"refresh_tokens": [1]}),
        ("reset", {"config": "yes"}),
        ("reset", [1]),
        ("config", b"{not json"),
        ("config", b"\xff\xfe"),
    ],
)
def test_bad_control_input_is_a_400(server: TokenServer, path: str, body: Any) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, content = call(
        server, "POST", f"/_control/{path}", body=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert content["error"] == "bad_request"
    assert content["message"]
    assert server.stats()["config"]["latency_ms"] == 0  # nothing applied, still serving


def test_control_errors_raise_in_the_harness(server: TokenServer) -> None:
    with pytest.raises(TokenServerError, match="400"):
        server.configure(rate=-1)
    assert call(server, "GET", "/_control/config")[:1] == (405,)
    assert call(server, "GET", "/nowhere")[:1] == (404,)


def test_reset_keeps_grants_and_config_unless_asked(server: TokenServer) -> None:
    (grant,) = server.bulk_grant(1, prefix="reset-")
    server.configure(latency_ms=5)
    refresh(server, grant["refresh_token"])
    server.reset()
    stats = server.stats()
    assert (stats["refreshed"], stats["token_calls"], stats["config"]["latency_ms"]) == (
        0,
        {"refresh_token": 0},
        5,
    )
    server.reset(config=True)
    assert server.stats()["config"] == {
        "latency_ms": 0,
        "rate": 0,
        "queue_ms": 1000,
        "retry_after": 1,
    }
    assert server.stats()["grants"] >= 1


# --- the HTTP server under bad input --------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /ping/whoami HTTP/2.0\r\n\r\n", 400),
        (b"GET /ping/whoami HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /ping/whoami HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"POST /oauth2/token HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST /oauth2/token HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST /oauth2/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
        (b"POST /oauth2/token HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413),
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n", 431),
        # Well-formed HTTP, but a token request no server could read.
        (
            b"POST /oauth2/token HTTP/1.1\r\nConnection: close\r\n"
            b"Content-Length: 2\r\n\r\n\xff\xfe",
            400,
        ),
        (
            b"POST /oauth2/token HTTP/1.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: 3\r\n\r\n[1]",
            400,
        ),
    ],
)
def test_malformed_requests_get_a_400_and_the_server_keeps_serving(
    server: TokenServer, request_bytes: bytes, status: int
) -> None:
    answer = raw_exchange(server, request_bytes)
    assert parse_answer(answer)[0] == status
    assert call(server, "GET", "/_control/stats")[0] == 200


def test_a_configured_client_and_token_lifetime() -> None:
    with TokenServer(token_lifetime=600, client_id="other", client_secret="s3cret") as other:
        (grant,) = other.bulk_grant(1)
        assert grant["expires_in"] == 600
        assert refresh(other, grant["refresh_token"])[0] == 401
        status, content = refresh(other, grant["refresh_token"], client=("other", "s3cret"))
        assert (status, content["expires_in"]) == (200, 600)
