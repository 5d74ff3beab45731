"""HTTP/1.1 exchanges on a kept connection, for the plain provider calls of transport.py.

A token call sent through requests' adapter spends most of its CPU in urllib3's connection
pool and in http.client, whose answer headers go through the email package's parser: on a
background refresh that was half of all the CPU per refresh. This module does the exchange
itself, for a call that is already prepared (transport.py and prepare.py) and whose shape it
knows: the request written in one piece, the answer read into one buffer, its head split on
line breaks (answer.py). What happens once per connection stays urllib3's: the connection
is opened by urllib3's own ``HTTPConnection``/``HTTPSConnection`` after requests' own
``cert_verify`` chose the CA bundle, so TLS (versions, SNI, hostname and certificate checks)
is exactly what requests would do. A compressed answer is decoded by urllib3's decoders.

The answer is the ``requests.Response`` requests would build (status, reason, headers with
repeated ones joined, encoding, URL, cookies, content), and every failure is the exception
requests would raise, so that callers (social-core, and single_flight's "answer lost"
rule) cannot tell the two apart:

- before the request went out: ``ConnectTimeout``, ``SSLError``, or ``ConnectionError``
  around urllib3's connection error;
- after it went out: ``ReadTimeout``, ``ChunkedEncodingError`` for a body cut short, or
  ``ConnectionError`` around urllib3's ``ProtocolError`` (the connection dropped, or an answer
  that is not HTTP), the ones single_flight counts as an answer that may have been lost.

A call is never sent twice. A kept connection is checked before it is reused (as urllib3
checks it: readable while idle means the provider closed it) and dropped after any failure,
an answer that asks to close it, or bytes beyond the answer. Whatever this module does not
handle (a proxy, a client certificate, ``verify=False``, a timeout object, a body that is a
stream or text beyond ASCII, a header value beyond Latin-1) returns None before anything is
sent, and goes through requests' adapter instead.
"""

from __future__ import annotations

import socket
import ssl
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.wait import wait_for_read

from integrations.providers.answer import (
    MAX_HEADERS,
    MAX_LINE,
    Head,
    NotHTTP,
    build_response,
    content_length,
    parse_head,
    will_close,
)

_RECEIVE = 65536
_NO_BODY = frozenset({204, 304})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Methods for which urllib3 adds no "Content-Length: 0" to a request without a body.
_NO_BODY_EXPECTED = frozenset({"GET", "HEAD", "DELETE", "TRACE", "OPTIONS", "CONNECT"})
# What urllib3 sends when a request has no User-Agent of its own.
_URLLIB3_AGENT = f"User-Agent: python-urllib3/{urllib3.__version__}".encode("ascii")


class _Dropped(Exception):
    """The connection ended or broke during the exchange (becomes a ProtocolError)."""


class _CutShort(Exception):
    """The body ended before its length or its last chunk (a ChunkedEncodingError)."""


@dataclass
class _Connection:
    """One kept connection: its socket and the bytes read past what was consumed."""

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)

    def fill(self) -> None:
        chunk = self.sock.recv(_RECEIVE)
        if not chunk:
            raise _Dropped("the provider closed the connection")
        self.buffer += chunk

    def head(self) -> bytes:
        """The answer's head (status line and headers), up to its blank line."""
        start = 0
        while True:
            end = _blank_line(self.buffer, start)
            if end is not None:
                cut, rest = end
                head = bytes(self.buffer[:cut])
                del self.buffer[:rest]
                return head
            if len(self.buffer) > MAX_LINE * (MAX_HEADERS + 1):
                raise NotHTTP("the answer's head is too long")
            start = max(0, len(self.buffer) - 3)
            self.fill()

    def line(self) -> bytes:
        """One line (a chunk's size, a trailer), without its line break."""
        start = 0
        while (end := self.buffer.find(b"\n", start)) < 0:
            if len(self.buffer) > MAX_LINE:
                raise NotHTTP("a line of the answer is too long")
            start = len(self.buffer)
            self.fill_or_cut()
        line = bytes(self.buffer[:end]).rstrip(b"\r")
        del self.buffer[: end + 1]
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.fill_or_cut()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def to_the_end(self) -> bytes:
        while True:
            chunk = self.sock.recv(_RECEIVE)
            if not chunk:
                data = bytes(self.buffer)
                self.buffer.clear()
                return data
            self.buffer += chunk

    def fill_or_cut(self) -> None:
        try:
            self.fill()
        except _Dropped:
            raise _CutShort("the answer's body ended early") from None

    def reusable(self) -> bool:
        """Idle and still open: nothing to read (a closed connection reads as readable)."""
        if self.buffer:
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


def _blank_line(buffer: bytearray, start: int) -> tuple[int, int] | None:
    """Where the head ends (its length, and where the body starts), or None for not yet: at
    the first empty line, whether lines end in CRLF or a bare LF (http.client accepts both)."""
    crlf = buffer.find(b"\n\r\n", start)
    lf = buffer.find(b"\n\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, crlf + 3
    if lf >= 0:
        return lf, lf + 2
    return None


class Wire:
    """One thread's kept connections, one per origin, and its exchanges on them."""

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
        if scheme not in _DEFAULT_PORTS or not host or not host.isascii() or timeouts is None:
            return None
        if scheme == "https" and not (verify is True or (isinstance(verify, str) and verify)):
            return None  # verify=False: requests' adapter, with its InsecureRequestWarning
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            return None
        message = _request_bytes(prepared, host, port, scheme)
        if message is None:
            return None
        connect_timeout, read_timeout = timeouts
        key = (scheme, host, port, verify)  # a connection trusted under its own CA bundle
        connection = self._connections.pop(key, None)
        if connection is not None and not connection.reusable():
            connection.close()
            connection = None
        if connection is None:
            connection = _open(scheme, host, port, connect_timeout, adapter, url, verify, prepared)
        try:
            connection.sock.settimeout(read_timeout)
            head, body, close = _exchange(connection, message, prepared.method or "GET")
        except BaseException as error:
            connection.close()
            mapped = _as_requests_error(error, prepared, f"{scheme}://{host}:{port}", read_timeout)
            if mapped is error:
                raise
            raise mapped  # noqa: B904 (in context, as requests raises it)
        if close or connection.buffer:
            connection.close()
        else:
            self._connections[key] = connection
        return build_response(prepared, adapter, head, body)


def _timeouts(timeout: Any) -> tuple[float | None, float | None] | None:
    """requests' timeout (None, a number, or a (connect, read) pair) as a pair; None for
    anything else (a urllib3 Timeout object goes through requests)."""
    if timeout is None:
        return None, None
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return float(timeout), float(timeout)
    if isinstance(timeout, tuple) and len(timeout) == 2:
        connect, read = timeout
        if all(value is None or isinstance(value, int | float) for value in timeout):
            return connect, read
    return None


def _request_bytes(
    prepared: requests.PreparedRequest, host: str, port: int, scheme: str
) -> bytes | None:
    """The request as urllib3 writes it through http.client (the request line, Host and
    Accept-Encoding unless given, the framing and User-Agent urllib3 adds when missing, then
    the prepared headers in order, then the body), or None for a shape left to requests."""
    method = prepared.method or "GET"
    target = prepared.path_url
    body = prepared.body
    if isinstance(body, str):
        if not body.isascii():
            return None
        body = body.encode("ascii")
    elif body is not None and not isinstance(body, bytes):
        return None
    if not _token(method) or not target.isascii() or any(c <= " " or c == "\x7f" for c in target):
        return None
    headers = prepared.headers
    lines = [f"{method} {target} HTTP/1.1".encode("ascii")]
    if "Host" not in headers:
        host_header = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[scheme]:
            host_header = f"{host_header}:{port}"
        lines.append(b"Host: " + host_header.encode("ascii"))
    if "Accept-Encoding" not in headers:
        lines.append(b"Accept-Encoding: identity")
    if "Transfer-Encoding" in headers:
        return None
    if "Content-Length" not in headers:
        if body is not None:
            return None  # urllib3 would send it chunked
        if method not in _NO_BODY_EXPECTED:
            lines.append(b"Content-Length: 0")
    if "User-Agent" not in headers:
        lines.append(_URLLIB3_AGENT)
    for name, value in headers.items():
        try:
            encoded_name = name.encode("ascii")
            encoded = value if isinstance(value, bytes) else str(value).encode("iso-8859-1")
        except UnicodeEncodeError:
            return None
        lines.append(encoded_name + b": " + encoded)
    lines.append(b"")
    lines.append(body or b"")
    return b"\r\n".join(lines)


def _token(method: str) -> bool:
    return bool(method) and method.isascii() and method.isalpha() and method.isupper()


def _open(
    scheme: str,
    host: str,
    port: int,
    connect_timeout: float | None,
    adapter: requests.adapters.HTTPAdapter,
    url: str,
    verify: bool | str,
    prepared: requests.PreparedRequest,
) -> _Connection:
    """A new connection, opened by urllib3 with the CA bundle requests chooses."""
    kind = HTTPSConnection if scheme == "https" else HTTPConnection
    opener = kind(host, port, timeout=connect_timeout)
    adapter.cert_verify(opener, url, verify, None)  # a missing CA bundle: requests' OSError
    try:
        opener.connect()
    except NewConnectionError as error:
        opener.close()
        raise requests.ConnectionError(error, request=prepared) from None
    except ConnectTimeoutError as error:
        opener.close()
        raise requests.ConnectTimeout(error, request=prepared) from None
    except (ssl.SSLError, ssl.CertificateError, urllib3.exceptions.SSLError) as error:
        opener.close()
        raise requests.exceptions.SSLError(error, request=prepared) from None
    except (OSError, urllib3.exceptions.HTTPError) as error:
        opener.close()
        raise requests.ConnectionError(error, request=prepared) from None
    return _Connection(opener.sock)


def _exchange(
    connection: _Connection, message: bytes, method: str
) -> tuple[Head, bytes, bool]:
    """Write the request, read the answer: its head, its body (still encoded), and whether
    the connection ends with it."""
    connection.sock.sendall(message)
    head = parse_head(connection.head())
    while 100 <= head.status < 200:  # an interim answer (100 Continue, 103 Early Hints)
        if head.status == 101:
            raise NotHTTP("the provider switched protocols")
        head = parse_head(connection.head())
    close = will_close(head)
    if method == "HEAD" or head.status in _NO_BODY:
        return head, b"", close
    if (head.get("transfer-encoding") or "").lower() == "chunked":
        return head, _chunked(connection), close
    length = content_length(head)
    if length is None:
        return head, connection.to_the_end(), True
    return head, connection.exactly(length), close


def _chunked(connection: _Connection) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = connection.line().split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise _CutShort("a chunk's size is not a number") from None
        if size == 0:
            while connection.line():  # trailers, up to the blank line
                pass
            return b"".join(parts)
        parts.append(connection.exactly(size))
        connection.exactly(2)  # the chunk's CRLF


def _as_requests_error(
    error: BaseException, prepared: requests.PreparedRequest, origin: str, read_timeout: Any
) -> BaseException:
    """The exception requests raises for this failure after the request was written."""
    if isinstance(error, TimeoutError | socket.timeout):
        timed_out = ReadTimeoutError(
            origin,  # type: ignore[arg-type]  # (urllib3 names its pool here)
            prepared.path_url,
            f"Read timed out. (read timeout={read_timeout})",
        )
        return requests.ReadTimeout(timed_out, request=prepared)
    if isinstance(error, _CutShort):
        cut = ProtocolError(f"Response ended prematurely: {error}")
        return requests.exceptions.ChunkedEncodingError(cut, request=prepared)
    if isinstance(error, _Dropped | NotHTTP | OSError):
        dropped = ProtocolError("Connection aborted.", error)
        return requests.ConnectionError(dropped, request=prepared)
    return error


