"""A tiny, fast loopback OAuth 2.0 token server, for benchmarks of background refresh.

The demo provider (django-oauth-toolkit) serves only ~50-110 refreshes/s: slower than our
refresher, so a benchmark against it measures the provider. This server serves thousands:
one process, one asyncio event loop, a hand-written HTTP/1.1 server (keep-alive,
Content-Length bodies only) and the grants in memory. It is standard library only, so it
starts in a blink and its CPU cost per request is its own.

What it models, because a refresher must survive it:

* rotation: every refresh mints a new access and refresh token; the old refresh token is
  remembered as used, and presenting it again is reuse (RFC 9700 §4.14.2): the whole grant
  is revoked, so even its newest refresh token dies;
* latency: ``latency_ms`` per token call, spent in ``asyncio.sleep`` (network time, no CPU);
* capacity: ``rate`` refreshes per second at most, in arrival order; a call that would wait
  more than ``queue_ms`` for its slot is refused at once (429 with Retry-After), the others
  wait in the queue (latency rises under load, as at an overloaded provider);
* lost answers: the rotation happens before the latency, so a client that gives up during
  it has lost the grant; the server counts the answers it could not deliver.

Run it with ``python -m tests.token_server --host 127.0.0.1 --port 0``: the only line on
stdout is ``listening on http://HOST:PORT``. ``TokenServer`` (below) starts it as a
process and steers it through its control plane (``/_control/...``, loopback only).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import http.client
import json
import os
import secrets
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus

from tests.loopback_process import LoopbackProcess

DEFAULT_CLIENT_ID = "custodian-demo"
DEFAULT_CLIENT_SECRET = "custodian-demo-secret"
SCOPE = "read write"
LISTENING_PREFIX = "listening on "

# Limits of the HTTP server: a request head larger than this is refused (431), a body
# larger than that too (413). `current` carries up to 100 000 refresh tokens (~5 MB).
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024 * 1024
# While a request waits (queue or latency), the next pipelined ones stay in the buffer;
# past this much, the connection stops reading until the answer is out.
PAUSE_READING_AT = 1024 * 1024

BULK_GRANT_MAX = 100_000
BULK_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}
JSON_TYPE = "application/json"


# --- state ----------------------------------------------------------------------------------


@dataclass
class Config:
    """What a benchmark can change while the server runs (``/_control/config``)."""

    latency_ms: float = 0
    rate: float = 0  # refreshes per second; 0: unlimited
    queue_ms: float = 1000
    retry_after: int = 1


CONFIG_LIMITS: dict[str, tuple[float, float]] = {
    "latency_ms": (0, 600_000),
    "rate": (0, 1_000_000),
    "queue_ms": (0, 600_000),
    "retry_after": (0, 86_400),
}


class Grant:
    """One user's authorization of the client: its current tokens, or revoked."""

    __slots__ = (
        "access_expires",
        "access_token",
        "client_id",
        "refresh_token",
        "revoked",
        "scope",
        "user_id",
        "username",
    )

    def __init__(
        self, username: str, client_id: str, scope: str, access: str, refresh: str, expires: float
    ) -> None:
        self.username = username
        self.user_id = f"user_{username}"
        self.client_id = client_id
        self.scope = scope
        self.access_token = access
        self.refresh_token = refresh
        self.access_expires = expires
        self.revoked = False


class Counters:
    """What ``/_control/stats`` reports; ``/_control/reset`` zeroes them."""

    def __init__(self) -> None:
        self.token_calls: Counter[str] = Counter()
        self.refreshed = 0
        self.invalid_grant = 0
        self.invalid_client = 0
        self.reuse_detected = 0
        self.rate_limited = 0
        self.answers_lost = 0
        # The lost answers that carried a new token pair: each is a grant the client lost.
        self.rotations_lost = 0
        self.revocations = 0
        self.max_in_flight = 0


class HttpError(Exception):
    """A request this server refuses: answered with `status` and a JSON body (the message
    under OAuth's ``error_description`` at the OAuth endpoints, ``message`` elsewhere)."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str = "",
        *,
        close: bool = False,
        headers: str = "",
        oauth: bool = False,
    ) -> None:
        super().__init__(message or error)
        self.status = status
        self.payload: dict[str, str] = {"error": error}
        if message:
            self.payload["error_description" if oauth else "message"] = message
        self.close = close
        self.headers = headers


class Request:
    """One parsed HTTP request (the head's names lower-cased, the body as received)."""

    __slots__ = ("body", "headers", "http10", "keep_alive", "loopback", "method", "path")

    def __init__(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        *,
        keep_alive: bool,
        http10: bool,
        loopback: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.http10 = http10
        self.loopback = loopback


class Answer:
    """An HTTP response ready to write, and what the connection must count once it is out
    (or not: a token call whose client is gone is an answer lost)."""

    __slots__ = ("close", "data", "rotated", "token_call")

    def __init__(self, data: bytes, close: bool, token_call: bool, rotated: bool) -> None:
        self.data = data
        self.close = close
        self.token_call = token_call
        self.rotated = rotated


def answer(
    request: Request | None,
    status: int,
    body: bytes = b"",
    *,
    headers: str = "",
    content_type: str = JSON_TYPE,
    close: bool = False,
    token_call: bool = False,
    rotated: bool = False,
) -> Answer:
    """Serialize a response; `headers` are extra header lines, each ending in CRLF."""
    close = close or request is None or not request.keep_alive
    if close:
        headers += "Connection: close\r\n"
    elif request is not None and request.http10:
        headers += "Connection: keep-alive\r\n"
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        f"{headers}\r\n"
    )
    return Answer(head.encode("latin-1") + body, close, token_call, rotated)


def json_answer(request: Request | None, status: int, payload: object, **kwargs: Any) -> Answer:
    return answer(request, status, json.dumps(payload).encode(), **kwargs)


def error_answer(request: Request | None, error: HttpError, **kwargs: Any) -> Answer:
    return json_answer(
        request, error.status, error.payload, close=error.close, headers=error.headers, **kwargs
    )


# --- request parameters ---------------------------------------------------------------------


def form_params(body: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded, without parse_qsl's generality: tokens are URL-safe,
    so most values need no unquoting at all. A repeated parameter is an error (RFC 6749 §3.2)."""
    params: dict[str, str] = {}
    if not body:
        return params
    for pair in body.decode("utf-8").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name, errors="strict")
        if "%" in value or "+" in value:
            value = unquote_plus(value, errors="strict")
        if name in params:
            raise ValueError(f"repeated parameter {name!r}")
        params[name] = value
    return params


def request_params(request: Request) -> dict[str, str]:
    """The token and revocation endpoints' parameters: a form, or a JSON object of strings."""
    body = request.body
    if "json" in request.headers.get("content-type", "") or body[:1] == b"{":
        data = json.loads(body)
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError("a JSON body must be an object of strings")
        return data
    return form_params(body)


def control_body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        data = json.loads(request.body)
    except ValueError as error:  # UnicodeDecodeError too
        raise HttpError(400, "bad_request", f"body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise HttpError(400, "bad_request", "body must be a JSON object")
    return data


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def new_token() -> str:
    return secrets.token_urlsafe(30)


# --- the application ------------------------------------------------------------------------

Handler = Callable[[Request], "Answer | Coroutine[Any, Any, Answer]"]


class TokenService:
    """Grants, counters and configuration; one handler per route.

    Everything runs on the one event loop thread: no locks. A handler answers at once (an
    Answer) or, when the call must wait (queue, latency), returns a coroutine the
    connection awaits before writing its answer.
    """

    def __init__(self, *, client_id: str, client_secret: str, token_lifetime: int) -> None:
        self.client_id = client_id
        self.client_secret = client_secret.encode()
        self.token_lifetime = token_lifetime
        self.config = Config()
        self.counters = Counters()
        self.in_flight = 0
        # When the next processing slot is free (loop time), under a `rate` cap.
        self.next_free = 0.0
        self.grants = 0
        self.live_grants = 0
        # Every refresh token ever issued (current or used) and every current access token.
        self.refresh_owner: dict[str, Grant] = {}
        self.access_owner: dict[str, Grant] = {}
        self.loop = asyncio.get_running_loop()
        self.routes: dict[str, tuple[str, Handler]] = {
            "/oauth2/token": ("POST", self.token),
            "/oauth2/token/": ("POST", self.token),
            "/oauth2/revoke_token/": ("POST", self.revoke),
            "/oauth2/revoke_token": ("POST", self.revoke),
            "/ping/whoami": ("GET", self.whoami),
            "/_control/bulk_grant": ("POST", self.control_bulk_grant),
            "/_control/config": ("POST", self.control_config),
            "/_control/stats": ("GET", self.control_stats),
            "/_control/reset": ("POST", self.control_reset),
            "/_control/current": ("POST", self.control_current),
        }

    def handle(self, request: Request) -> Answer | Coroutine[Any, Any, Answer]:
        route = self.routes.get(request.path)
        if route is None:
            raise HttpError(404, "not_found", f"no route {request.path!r}")
        method, handler = route
        if request.method != method:
            raise HttpError(405, "method_not_allowed", headers=f"Allow: {method}\r\n")
        if request.path.startswith("/_control/") and not request.loopback:
            raise HttpError(403, "forbidden", "the control plane answers loopback clients only")
        return handler(request)

    # -- grants ---------------------------------------------------------------------------------

    def mint(self, username: str, client_id: str, scope: str) -> Grant:
        grant = Grant(
            username,
            client_id,
            scope,
            new_token(),
            new_token(),
            self.loop.time() + self.token_lifetime,
        )
        self.refresh_owner[grant.refresh_token] = grant
        self.access_owner[grant.access_token] = grant
        self.grants += 1
        self.live_grants += 1
        return grant

    def rotate(self, grant: Grant) -> None:
        """New access and refresh tokens; the old refresh token stays known, as used."""
        del self.access_owner[grant.access_token]
        grant.access_token = new_token()
        grant.refresh_token = new_token()
        grant.access_expires = self.loop.time() + self.token_lifetime
        self.access_owner[grant.access_token] = grant
        self.refresh_owner[grant.refresh_token] = grant

    def revoke_grant(self, grant: Grant) -> None:
        if not grant.revoked:
            grant.revoked = True
            self.live_grants -= 1
            self.access_owner.pop(grant.access_token, None)

    def authenticate_client(self, request: Request, params: dict[str, str]) -> bool:
        """HTTP Basic (RFC 6749 §2.3.1: both parts form-encoded) or the body's parameters."""
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
                client_id, sep, secret = decoded.partition(":")
                client_id, secret = unquote_plus(client_id), unquote_plus(secret)
            except (binascii.Error, ValueError):
                return False
            if not sep:
                return False
        else:
            client_id = params.get("client_id", "")
            secret = params.get("client_secret", "")
        return client_id == self.client_id and hmac.compare_digest(
            secret.encode(), self.client_secret
        )

    # -- the token endpoint ---------------------------------------------------------------------

    def token(self, request: Request) -> Answer | Coroutine[Any, Any, Answer]:
        """Count the call, then take a processing slot: refuse at once when the queue is too
        long, answer at once when nothing has to wait, else wait (queue, then latency)."""
        try:
            params = request_params(request)
        except ValueError as error:
            raise HttpError(400, "invalid_request", str(error), oauth=True) from None
        counters = self.counters
        counters.token_calls[params.get("grant_type", "")] += 1
        config = self.config
        delay = 0.0
        if config.rate > 0:
            now = self.loop.time()
            start = max(now, self.next_free)
            delay = start - now
            if delay > config.queue_ms / 1000:
                counters.rate_limited += 1
                return json_answer(
                    request,
                    429,
                    {"error": "slow_down", "error_description": "too many token requests"},
                    headers=f"Retry-After: {config.retry_after}\r\n",
                )
            self.next_free = start + 1 / config.rate
        self.in_flight += 1
        if self.in_flight > counters.max_in_flight:
            counters.max_in_flight = self.in_flight
        latency = config.latency_ms / 1000
        if delay <= 0 and latency <= 0:
            return self.process_token(request, params)
        return self.token_later(request, params, delay, latency)

    async def token_later(
        self, request: Request, params: dict[str, str], delay: float, latency: float
    ) -> Answer:
        """Queue, then process (the rotation happens here), then latency: a client that gives
        up during the latency has lost the grant, as with a real provider."""
        if delay > 0:
            await asyncio.sleep(delay)
        result = self.process_token(request, params)
        if latency > 0:
            await asyncio.sleep(latency)
        return result

    def process_token(self, request: Request, params: dict[str, str]) -> Answer:
        try:
            return self.refresh(request, params)
        except Exception:  # a bug here: answer 500 and keep serving, with in_flight right
            traceback.print_exc()
            return json_answer(request, 500, {"error": "server_error"}, token_call=True)

    def refresh(self, request: Request, params: dict[str, str]) -> Answer:
        counters = self.counters
        if not self.authenticate_client(request, params):
            counters.invalid_client += 1
            return json_answer(
                request,
                401,
                {"error": "invalid_client"},
                headers='WWW-Authenticate: Basic realm="token"\r\n',
                token_call=True,
            )
        if params.get("grant_type") != "refresh_token":
            return json_answer(request, 400, {"error": "unsupported_grant_type"}, token_call=True)
        token = params.get("refresh_token")
        if not token:
            return json_answer(
                request,
                400,
                {"error": "invalid_request", "error_description": "refresh_token is missing"},
                token_call=True,
            )
        grant = self.refresh_owner.get(token)
        if grant is None or grant.revoked or grant.client_id != self.client_id:
            counters.invalid_grant += 1
            return json_answer(request, 400, {"error": "invalid_grant"}, token_call=True)
        if token != grant.refresh_token:
            self.revoke_grant(grant)
            counters.reuse_detected += 1
            counters.invalid_grant += 1
            return json_answer(
                request,
                400,
                {"error": "invalid_grant", "error_description": "refresh token reused"},
                token_call=True,
            )
        self.rotate(grant)
        counters.refreshed += 1
        return json_answer(
            request,
            200,
            {
                "access_token": grant.access_token,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "refresh_token": grant.refresh_token,
                "scope": grant.scope,
            },
            headers="Pragma: no-cache\r\n",
            token_call=True,
            rotated=True,
        )

    # -- revocation and the API -----------------------------------------------------------------

    def revoke(self, request: Request) -> Answer:
        """RFC 7009: revoke the grant the token (access or refresh, current or used) belongs
        to; an unknown token is answered 200 as well."""
        try:
            params = request_params(request)
        except ValueError as error:
            raise HttpError(400, "invalid_request", str(error), oauth=True) from None
        if not self.authenticate_client(request, params):
            self.counters.invalid_client += 1
            raise HttpError(
                401, "invalid_client", headers='WWW-Authenticate: Basic realm="token"\r\n'
            )
        token = params.get("token")
        if not token:
            raise HttpError(400, "invalid_request", "token is missing", oauth=True)
        grant = self.refresh_owner.get(token) or self.access_owner.get(token)
        if grant is not None and grant.client_id == self.client_id:
            self.counters.revocations += 1
            self.revoke_grant(grant)
        return answer(request, 200, content_type="text/plain")

    def whoami(self, request: Request) -> Answer:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        grant = self.access_owner.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant.revoked or grant.access_expires <= self.loop.time():
            raise HttpError(
                401, "invalid_token", headers='WWW-Authenticate: Bearer error="invalid_token"\r\n'
            )
        return json_answer(
            request,
            200,
            {
                "authenticated": True,
                "client_id": grant.client_id,
                "user_id": grant.user_id,
                "username": grant.username,
            },
        )

    # -- control plane --------------------------------------------------------------------------

    def control_bulk_grant(self, request: Request) -> Answer:
        """Mint `count` grants for users ``{prefix}{i}``, shaped as the demo provider's."""
        body = control_body(request)
        count = body.get("count")
        prefix = body.get("prefix", "bulk")
        client_id = body.get("client_id", self.client_id)
        scope = body.get("scope", SCOPE)
        if (
            not isinstance(count, int)
            or isinstance(count, bool)
            or not 1 <= count <= BULK_GRANT_MAX
        ):
            raise HttpError(
                400, "bad_request", f"count must be an integer from 1 to {BULK_GRANT_MAX}"
            )
        if not isinstance(prefix, str) or not prefix or not set(prefix) <= BULK_PREFIX_CHARS:
            raise HttpError(
                400, "bad_request", "prefix must be lowercase letters, digits, '_' or '-'"
            )
        if client_id != self.client_id:
            raise HttpError(400, "bad_request", f"no client {client_id!r}")
        if not isinstance(scope, str):
            raise HttpError(400, "bad_request", "scope must be a string")
        grants = []
        for index in range(count):
            grant = self.mint(f"{prefix}{index}", client_id, scope)
            grants.append(
                {
                    "username": grant.username,
                    "user_id": grant.user_id,
                    "access_token": grant.access_token,
                    "refresh_token": grant.refresh_token,
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime,
                    "scope": scope,
                }
            )
        return json_answer(request, 200, {"grants": grants})

    def control_config(self, request: Request) -> Answer:
        body = control_body(request)
        unknown = set(body) - set(CONFIG_LIMITS)
        if unknown:
            raise HttpError(400, "bad_request", f"unknown settings {sorted(unknown)}")
        for name, value in body.items():
            low, high = CONFIG_LIMITS[name]
            valid = is_int(value) if name == "retry_after" else is_number(value)
            if not valid or not low <= value <= high:
                raise HttpError(400, "bad_request", f"{name} must be a number from {low} to {high}")
        for name, value in body.items():
            setattr(self.config, name, value)
        return json_answer(request, 200, asdict(self.config))

    def stats(self) -> dict[str, Any]:
        counters = self.counters
        return {
            "token_calls": {"refresh_token": 0, **counters.token_calls},
            "refreshed": counters.refreshed,
            "invalid_grant": counters.invalid_grant,
            "invalid_client": counters.invalid_client,
            "reuse_detected": counters.reuse_detected,
            "rate_limited": counters.rate_limited,
            "answers_lost": counters.answers_lost,
            "rotations_lost": counters.rotations_lost,
            "revocations": counters.revocations,
            "max_in_flight": counters.max_in_flight,
            "in_flight": self.in_flight,
            "cpu_seconds": time.process_time(),
            "grants": self.grants,
            "live_grants": self.live_grants,
            "config": asdict(self.config),
        }

    def control_stats(self, request: Request) -> Answer:
        return json_answer(request, 200, self.stats())

    def control_reset(self, request: Request) -> Answer:
        """Zero the counters (grants stay); with ``{"config": true}`` the settings too."""
        body = control_body(request)
        if set(body) - {"config"} or not isinstance(body.get("config", False), bool):
            raise HttpError(400, "bad_request", 'the body is {} or {"config": true}')
        self.counters = Counters()
        self.counters.max_in_flight = self.in_flight
        if body.get("config"):
            self.config = Config()
            self.next_free = 0.0
        return json_answer(request, 200, {})

    def control_current(self, request: Request) -> Answer:
        """How many of these refresh tokens are a live grant's current one, a used one (of a
        live grant), one of a revoked grant, or unknown: after a benchmark, whatever is not
        current is a grant the client has lost."""
        tokens = control_body(request).get("refresh_tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise HttpError(400, "bad_request", "refresh_tokens must be a list of strings")
        counts = {"current": 0, "used": 0, "revoked": 0, "unknown": 0}
        for token in tokens:
            grant = self.refresh_owner.get(token)
            if grant is None:
                counts["unknown"] += 1
            elif grant.revoked:
                counts["revoked"] += 1
            elif grant.refresh_token == token:
                counts["current"] += 1
            else:
                counts["used"] += 1
        return json_answer(request, 200, counts)


# --- HTTP/1.1 -------------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One client connection: parses requests from the buffer and answers them in order.

    A request that must wait holds the connection (pipelined requests stay buffered) until
    its answer is written; if the client is gone by then, the answer is lost, and counted.
    """

    def __init__(self, service: TokenService) -> None:
        self.service = service
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: asyncio.Task[None] | None = None
        self.loopback = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.loopback = bool(peer) and peer[0] in ("127.0.0.1", "::1")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.buffer.clear()

    def eof_received(self) -> bool:
        # A client that shuts its side down has given up: no answer can be relied on.
        return False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiting is None:
            self.serve()
        elif len(self.buffer) > PAUSE_READING_AT and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True

    def serve(self) -> None:
        """Answer every complete request in the buffer, until one has to wait."""
        service = self.service
        while self.transport is not None and not self.transport.is_closing():
            request = None
            try:
                request = self.parse()
                if request is None:
                    return
                result = service.handle(request)
            except HttpError as error:
                result = error_answer(request, error)
            except Exception:
                traceback.print_exc()
                result = json_answer(request, 500, {"error": "server_error"}, close=True)
            if isinstance(result, Answer):
                self.send(result)
            else:
                self.waiting = service.loop.create_task(self.finish(result))
                return

    async def finish(self, pending: Coroutine[Any, Any, Answer]) -> None:
        result = await pending
        self.waiting = None
        self.send(result)
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        if self.buffer:
            self.serve()

    def send(self, result: Answer) -> None:
        service = self.service
        transport = self.transport
        if result.token_call:
            service.in_flight -= 1
        if transport is None or transport.is_closing():
            if result.token_call:
                service.counters.answers_lost += 1
                if result.rotated:
                    service.counters.rotations_lost += 1
            return
        transport.write(result.data)
        if result.close:
            transport.close()

    def parse(self) -> Request | None:
        """The next complete request in the buffer, None if it is not all there yet."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise HttpError(431, "bad_request", "request head too large", close=True)
            return None
        if end > MAX_HEAD:
            raise HttpError(431, "bad_request", "request head too large", close=True)
        lines = buffer[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith("/"):
            raise HttpError(400, "bad_request", "malformed request line", close=True)
        method, target, version = parts
        if version == "HTTP/1.1":
            keep_alive, http10 = True, False
        elif version == "HTTP/1.0":
            keep_alive, http10 = False, True
        else:
            raise HttpError(400, "bad_request", "HTTP/1.1 or HTTP/1.0 only", close=True)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or " " in name:
                raise HttpError(400, "bad_request", "malformed header line", close=True)
            name = name.lower()
            value = value.strip(" \t")
            previous = headers.get(name)
            if previous is None:
                headers[name] = value
            elif name == "content-length":
                if previous != value:
                    raise HttpError(400, "bad_request", "conflicting Content-Length", close=True)
            else:
                headers[name] = f"{previous}, {value}"
        if "transfer-encoding" in headers:
            raise HttpError(501, "not_implemented", "Content-Length bodies only", close=True)
        length = 0
        length_text = headers.get("content-length")
        if length_text is not None:
            if not (length_text.isascii() and length_text.isdigit()):
                raise HttpError(400, "bad_request", "malformed Content-Length", close=True)
            length = int(length_text)
            if length > MAX_BODY:
                raise HttpError(413, "bad_request", "request body too large", close=True)
        total = end + 4 + length
        if len(buffer) < total:
            return None
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        connection = headers.get("connection")
        if connection is not None:
            connection = connection.lower()
            if "close" in connection:
                keep_alive = False
            elif "keep-alive" in connection:
                keep_alive = True
        return Request(
            method,
            target.partition("?")[0],
            headers,
            body,
            keep_alive=keep_alive,
            http10=http10,
            loopback=self.loopback,
        )


# --- the process ----------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    service = TokenService(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
    )
    server = await loop.create_server(
        lambda: Connection(service), args.host, args.port, reuse_address=True, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"{LISTENING_PREFIX}http://{host}:{port}", flush=True)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    async with server:
        await stopped.wait()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.token_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument(
        "--token-lifetime", type=int, default=3600, help="expires_in of access tokens (seconds)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


# --- the harness ----------------------------------------------------------------------------

# bulk_grant of 100 000 answers ~25 MB of JSON: allow it time.
CONTROL_TIMEOUT = 60.0


class TokenServerError(RuntimeError):
    """The token server failed to start, or its control plane refused a call."""


class TokenServer(LoopbackProcess):
    """One token server process on a free loopback port, steered through its control plane,
    in the style of ``tests.provider.LoopbackProvider`` (and usable where a benchmark or
    ``tests.conftest.grant_associations`` takes one: ``bulk_grant`` is the same)."""

    name = "token server"
    listening_prefix = LISTENING_PREFIX
    error = TokenServerError

    def __init__(
        self,
        *,
        token_lifetime: int = 3600,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
    ) -> None:
        super().__init__()
        self.token_lifetime = token_lifetime
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = ""
        self.port = 0

    def start(self) -> TokenServer:
        """Spawn the server and wait for its listening line (raises with its stderr)."""
        self._spawn(
            [
                sys.executable,
                "-m",
                "tests.token_server",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--client-id",
                self.client_id,
                "--client-secret",
                self.client_secret,
                "--token-lifetime",
                str(self.token_lifetime),
            ],
            {**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        address = self.base_url.removeprefix("http://")
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        return self

    # -- control plane ------------------------------------------------------------------------

    def _control(self, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        # http.client, not urllib or requests: no proxy settings apply to loopback calls.
        connection = http.client.HTTPConnection(self.host, self.port, timeout=CONTROL_TIMEOUT)
        try:
            if payload is None:
                connection.request("GET", f"/_control/{name}")
            else:
                connection.request(
                    "POST",
                    f"/_control/{name}",
                    body=json.dumps(payload).encode(),
                    headers={"Content-Type": JSON_TYPE},
                )
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise TokenServerError(
                f"/_control/{name} answered {response.status}: {body.decode(errors='replace')}"
            )
        result: dict[str, Any] = json.loads(body)
        return result

    def bulk_grant(
        self, count: int, *, prefix: str = "bulk", client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Mint `count` grants (users ``{prefix}0``...; this server's client unless told);
        return their token responses, each with ``username`` and ``user_id``."""
        grants: list[dict[str, Any]] = self._control(
            "bulk_grant",
            {"count": count, "prefix": prefix, "client_id": client_id or self.client_id},
        )["grants"]
        return grants

    def configure(
        self,
        latency_ms: float | None = None,
        rate: float | None = None,
        queue_ms: float | None = None,
        retry_after: int | None = None,
    ) -> dict[str, Any]:
        """Change the settings given (the others stay); return them all."""
        settings = {
            "latency_ms": latency_ms,
            "rate": rate,
            "queue_ms": queue_ms,
            "retry_after": retry_after,
        }
        return self._control(
            "config", {name: value for name, value in settings.items() if value is not None}
        )

    def latency(self, token_ms: float) -> None:
        self.configure(latency_ms=token_ms)

    def stats(self) -> dict[str, Any]:
        return self._control("stats")

    def reset(self, *, config: bool = False) -> None:
        """Zero the counters; with `config`, the settings go back to their defaults too."""
        self._control("reset", {"config": True} if config else {})

    def current(self, refresh_tokens: Iterable[str]) -> dict[str, int]:
        """How many of these refresh tokens are current, used, revoked or unknown."""
        counts: dict[str, int] = self._control("current", {"refresh_tokens": list(refresh_tokens)})
        return counts


if __name__ == "__main__":
    main()
