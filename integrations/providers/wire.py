"""HTTP/1.1 exchanges on a kept connection, for the plain provider calls of transport.py.

A token call sent through requests' adapter spends most of its CPU in urllib3's connection
pool and in http.client, whose answer headers go through the email package's parser: on a
background refresh that was half of all the CPU per refresh. This module does the exchange
itself, for a call that is already prepared (transport.py and prepare.py) and whose shape it
knows: the request written in one piece (request_bytes.py), the answer read into one
buffer, its head parsed and its body delimited by the rules of requests' stack (answer.py).
What happens once per connection stays urllib3's: the connection is opened by urllib3's own
``HTTPConnection`` or ``HTTPSConnection`` with the CA bundle requests' own ``cert_verify``
chose, so TLS (versions, SNI, hostname and certificate checks) is exactly what requests does.
A compressed answer is decoded by urllib3's decoders.

The answer is the ``requests.Response`` requests builds (status, reason, headers with
repeated ones joined, encoding, URL, cookies, content), and every failure is the exception
requests raises at that stage (wire_errors.py), so that callers (social-core, and
single_flight's "answer lost" rule) cannot tell the two apart. tests/test_wire.py sends each
case both ways and compares.

A call is never sent twice. A kept connection is checked before it is reused (as urllib3
checks it: readable while idle means the provider closed it) and dropped after any failure,
an answer that asks to close it, or bytes beyond the answer. Whatever this module does not
handle (a proxy, a client certificate, ``verify=False``, a timeout requests would refuse or
a urllib3 Timeout object, a body that is a stream or text beyond ASCII, a header value
beyond Latin-1 or urllib3's SKIP_HEADER) returns None before anything is sent, and goes
through requests' adapter instead.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from http.client import RemoteDisconnected
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import IncompleteRead, InvalidChunkLength, ProtocolError
from urllib3.util.wait import wait_for_read

from integrations.providers.answer import (
    Framing,
    Head,
    build_response,
    check_partial_head,
    framing,
    parse_head,
)
from integrations.providers.request_bytes import DEFAULT_PORTS, request_bytes
from integrations.providers.wire_errors import (
    BODY,
    CONNECT,
    HEAD,
    SEND,
    Origin,
    as_requests_error,
    harmless_while_sending,
)

_RECEIVE = 65536
_MAX_CHUNK_LINE = 2**16  # urllib3's limit on a chunk's size line and on a trailer line


class _Ended(Exception):
    """The provider closed the connection."""


@dataclass
class _Connection:
    """One kept connection: its socket and the bytes read past what was consumed."""

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    ended: bool = False  # the provider closed it: what is in the buffer is all there is

    def fill(self) -> None:
        if not self.ended:
            chunk = self.sock.recv(_RECEIVE)
            if chunk:
                self.buffer += chunk
                return
            self.ended = True
        raise _Ended

    def head(self) -> bytes:
        """The answer's head: its status line and header lines with their line breaks, up
        to the empty line (a line that is CRLF or a bare LF, as http.client reads it); all
        that came when the connection ended first, as http.client takes it. While it is
        incomplete, what has come is checked as http.client checks it line by line (a status
        line that is no HTTP, a line too long, too many headers fail at once, not after the
        read timeout)."""
        start = 0
        while True:
            crlf = self.buffer.find(b"\n\r\n", start)
            lf = self.buffer.find(b"\n\n", start)
            if crlf >= 0 and (lf < 0 or crlf < lf):
                return self._take(crlf + 1, crlf + 3)
            if lf >= 0:
                return self._take(lf + 1, lf + 2)
            check_partial_head(bytes(self.buffer))
            start = max(0, len(self.buffer) - 2)
            try:
                self.fill()
            except _Ended:
                if not self.buffer:
                    raise RemoteDisconnected(
                        "Remote end closed connection without response"
                    ) from None
                return self._take(len(self.buffer), len(self.buffer))

    def _take(self, cut: int, rest: int) -> bytes:
        taken = bytes(self.buffer[:cut])
        del self.buffer[:rest]
        return taken

    def line(self, kind: str) -> bytes:
        """One line of a chunked body (`kind`: "size" or "trailer") with its line break;
        what is left when the connection ended first (b"" when nothing is)."""
        start = 0
        while (end := self.buffer.find(b"\n", start)) < 0:
            if len(self.buffer) > _MAX_CHUNK_LINE:
                raise ProtocolError(f"Response chunk {kind} line exceeded maximum allowed length")
            start = len(self.buffer)
            try:
                self.fill()
            except _Ended:
                return self._take(len(self.buffer), len(self.buffer))
        if end >= _MAX_CHUNK_LINE:
            raise ProtocolError(f"Response chunk {kind} line exceeded maximum allowed length")
        return self._take(end + 1, end + 1)

    def exactly(self, size: int, *, chunk: bool = False) -> bytes:
        """`size` bytes; when the connection ends first, the IncompleteRead requests' stack
        raises there (http.client's in a chunk, urllib3's for a body of known length)."""
        while len(self.buffer) < size:
            try:
                self.fill()
            except _Ended:
                have = bytes(self.buffer)
                if chunk:
                    raise http.client.IncompleteRead(have, size - len(have)) from None
                raise IncompleteRead(len(have), size - len(have)) from None
        return self._take(size, size)

    def to_the_end(self) -> bytes:
        with suppress(_Ended):
            while True:
                self.fill()
        return self._take(len(self.buffer), len(self.buffer))

    def reusable(self) -> bool:
        """Idle and still open: nothing to read (a closed connection reads as readable)."""
        if self.buffer or self.ended:
            return False
        sock = self.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        try:
            return not wait_for_read(sock, timeout=0.0)
        except OSError:
            return False

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()


class Wire:
    """One thread's kept connections, one per origin and trust setting, and its exchanges."""

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str, int, bool | str], _Connection] = {}

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def send(
        self,
        prepared: requests.PreparedRequest,
        adapter: requests.adapters.HTTPAdapter,
        *,
        timeout: Any,
        verify: bool | str,
    ) -> requests.Response | None:
        """Send `prepared` and read its answer; None, before sending anything, when the call
        is not one this module handles."""
        url = str(prepared.url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        timeouts = _timeouts(timeout)
        if scheme not in DEFAULT_PORTS or not host or not host.isascii() or timeouts is None:
            return None
        if scheme == "https" and not (verify is True or (isinstance(verify, str) and verify)):
            return None  # verify=False: requests' adapter, with its InsecureRequestWarning
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            return None
        message = request_bytes(prepared, host, port, scheme)
        if message is None:
            return None
        origin = Origin(scheme, host, port, parts.path or "/")
        # requests' choice of CA bundle, made on every call as requests makes it (a bundle
        # that is gone raises its OSError, also for a kept connection).
        trust = SimpleNamespace(cert_reqs=None, ca_certs=None, ca_cert_dir=None)
        adapter.cert_verify(trust, url, verify, None)
        key = (scheme, host, port, verify)  # a connection trusted under its own CA bundle
        connection = self._connections.pop(key, None)
        if connection is not None and not connection.reusable():
            connection.close()
            connection = None
        stage = [CONNECT]
        started = time.perf_counter()
        try:
            if connection is None:
                connection = _open(origin, timeouts[0], trust)
            method = prepared.method or "GET"
            head, frame, elapsed = _head(connection, message, method, timeouts, stage)
            stage[0] = BODY
            body = _body(connection, frame)
        except BaseException as error:
            if connection is not None:
                connection.close()
            mapped = as_requests_error(error, stage[0], origin, prepared, timeouts)
            if mapped is error:
                raise
            raise mapped  # noqa: B904 (in context, as requests raises it)
        if frame.close or connection.ended or connection.buffer:
            connection.close()
        else:
            self._connections[key] = connection
        response = build_response(prepared, adapter, head, body)
        response.elapsed = timedelta(seconds=elapsed - started)  # up to the head, as requests
        return response


def _timeouts(timeout: Any) -> tuple[Any, Any] | None:
    """requests' timeout (None, a number, or a (connect, read) pair) as a pair; None for one
    requests refuses (it raises ValueError: not sent) or a urllib3 Timeout object."""
    if timeout is None or isinstance(timeout, int | float):
        pair = (timeout, timeout)
    elif isinstance(timeout, tuple) and len(timeout) == 2:
        pair = timeout
    else:
        return None
    try:
        urllib3.Timeout(connect=pair[0], read=pair[1])
    except (TypeError, ValueError):
        return None
    return pair


def _open(origin: Origin, connect_timeout: Any, trust: SimpleNamespace) -> _Connection:
    """A new connection, opened by urllib3 with the CA bundle requests chose."""
    opener: HTTPConnection
    if origin.scheme == "https":
        opener = HTTPSConnection(
            origin.host,
            origin.port,
            timeout=connect_timeout,
            cert_reqs=trust.cert_reqs,
            ca_certs=trust.ca_certs,
            ca_cert_dir=trust.ca_cert_dir,
        )
    else:
        opener = HTTPConnection(origin.host, origin.port, timeout=connect_timeout)
    try:
        opener.connect()
    except BaseException:
        opener.close()
        raise
    return _Connection(opener.sock)


def _head(
    connection: _Connection,
    message: bytes,
    method: str,
    timeouts: tuple[Any, Any],
    stage: list[str],
) -> tuple[Head, Framing, float]:
    """Write the request (under the connect timeout, as urllib3 does), then read the
    answer's head (under the read timeout): the head, how its body is framed, and when the
    head was read. An interim 100 Continue is skipped, as http.client skips it."""
    stage[0] = SEND
    connection.sock.settimeout(timeouts[0])
    try:
        connection.sock.sendall(message)
    except OSError as error:
        if not harmless_while_sending(error):
            raise
    stage[0] = HEAD
    connection.sock.settimeout(timeouts[1])
    head = parse_head(connection.head())
    while head.status == 100:
        head = parse_head(connection.head())
    return head, framing(head, method), time.perf_counter()


def _body(connection: _Connection, frame: Framing) -> bytes:
    if frame.chunked:
        return _chunked(connection)
    if frame.length is not None:
        return connection.exactly(frame.length)
    body = connection.to_the_end()
    if frame.expected is not None and len(body) != frame.expected:
        raise IncompleteRead(len(body), frame.expected - len(body))
    return body


class _Progress:
    """What urllib3's InvalidChunkLength asks of its response: the bytes read, which urllib3
    does not count in a chunked body (its message always says 0)."""

    length_remaining = None

    def tell(self) -> int:
        return 0


def _chunked(connection: _Connection) -> bytes:
    """A chunked body, read as urllib3 reads it (a size line, its extensions ignored; the
    chunk; two bytes of line break; after the last chunk, trailers up to an empty line or
    the end of the connection), failing with urllib3's own errors."""
    parts: list[bytes] = []
    while True:
        size_line = connection.line("size").split(b";", 1)[0]
        try:
            size = int(size_line, 16)
            if size < 0:
                raise ValueError(size)
        except ValueError:
            if size_line:
                raise InvalidChunkLength(_Progress(), size_line) from None  # type: ignore[arg-type]
            raise ProtocolError("Response ended prematurely") from None
        if size == 0:
            while (trailer := connection.line("trailer")) and trailer not in (b"\r\n", b"\n"):
                pass
            return b"".join(parts)
        parts.append(connection.exactly(size, chunk=True))
        connection.exactly(2, chunk=True)  # the chunk's line break
