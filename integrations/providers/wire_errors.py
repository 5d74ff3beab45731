"""The exception requests raises for each failure of an exchange, by the stage it happened in
(wire.py), so that social-core and single_flight's "answer lost" rule see what they would see
through requests' adapter (requests 2.34 over urllib3 2.8):

- connect: ``ConnectionError`` or ``ConnectTimeout`` around urllib3's ``MaxRetryError``
  (nothing was sent); on TLS, ``SSLError`` the same way, a handshake that timed out a
  ``ReadTimeout``, and one the provider broke off a ``ConnectionError(ProtocolError)``;
- send: a broken pipe or a reset is no failure yet (the provider may have answered before
  it stopped reading: the answer is read), anything else ``ConnectionError(ProtocolError)``;
- head: ``ReadTimeout``; ``SSLError``; ``InvalidHeader`` for Content-Lengths that disagree;
  ``ConnectionError(ProtocolError("Connection aborted.", ...))`` for a connection that ended
  or an answer that is not HTTP (http.client's own exceptions inside);
- body: ``ConnectionError(ReadTimeoutError)`` for a timeout, ``SSLError``, and
  ``ChunkedEncodingError(ProtocolError("Connection broken: ..."))`` for a body cut short
  (as requests raises these while reading the content: without the request attached).

One difference is deliberate: urllib3 names the request's path with its query in its
messages; here the query is left out, since a provider call may carry a secret there.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
from typing import Any

import requests
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from integrations.providers.answer import ConflictingLength

CONNECT, SEND, HEAD, BODY = "connect", "send", "head", "body"
# Raised by a socket whose timeout passed (socket.timeout is TimeoutError since Python 3.10).
_BLOCKING = {errno.EAGAIN, errno.EWOULDBLOCK}


def harmless_while_sending(error: OSError) -> bool:
    """A provider may stop reading and answer early (413, 401): urllib3 swallows these and
    reads the answer."""
    return isinstance(error, BrokenPipeError) or error.errno in (
        errno.EPROTOTYPE,
        errno.ECONNRESET,
    )


class Origin:
    """Where a call went: the pool urllib3 would name in its messages, and the path."""

    def __init__(self, scheme: str, host: str, port: int, path: str) -> None:
        self.scheme, self.host, self.port, self.path = scheme, host, port, path

    def pool(self) -> urllib3.HTTPConnectionPool:
        kind = urllib3.HTTPSConnectionPool if self.scheme == "https" else urllib3.HTTPConnectionPool
        return kind(self.host, self.port)


def as_requests_error(
    error: BaseException,
    stage: str,
    origin: Origin,
    prepared: requests.PreparedRequest,
    timeouts: tuple[Any, Any],
) -> BaseException:
    """The exception requests raises instead of `error`, met at `stage`; `error` itself when
    it is none of a connection's (a bug, an interrupt)."""
    if isinstance(error, requests.RequestException):
        return error
    if stage == CONNECT:
        return _connect_error(error, origin, prepared, timeouts[0])
    if stage == BODY:
        return _body_error(error, origin)
    if isinstance(error, ConflictingLength):
        return requests.exceptions.InvalidHeader(InvalidHeader(str(error)), request=prepared)
    if stage == HEAD and _timed_out(error):
        return requests.ReadTimeout(_read_timeout(origin, timeouts[1]), request=prepared)
    if isinstance(error, ssl.SSLError):
        failed = MaxRetryError(origin.pool(), origin.path, urllib3.exceptions.SSLError(error))
        return requests.exceptions.SSLError(failed, request=prepared)
    if isinstance(error, OSError | http.client.HTTPException):
        aborted = ProtocolError("Connection aborted.", error)
        return requests.ConnectionError(aborted, request=prepared)
    return error


def _timed_out(error: BaseException) -> bool:
    return isinstance(error, TimeoutError | socket.timeout) or (
        isinstance(error, OSError) and error.errno in _BLOCKING
    )


def _read_timeout(origin: Origin, timeout: Any) -> ReadTimeoutError:
    return ReadTimeoutError(origin.pool(), origin.path, f"Read timed out. (read timeout={timeout})")


def _connect_error(
    error: BaseException, origin: Origin, prepared: requests.PreparedRequest, timeout: Any
) -> BaseException:
    if isinstance(error, NewConnectionError):  # (a subclass of ConnectTimeoutError)
        failed = MaxRetryError(origin.pool(), origin.path, error)
        return requests.ConnectionError(failed, request=prepared)
    if isinstance(error, ConnectTimeoutError):
        failed = MaxRetryError(origin.pool(), origin.path, error)
        return requests.ConnectTimeout(failed, request=prepared)
    if _timed_out(error):  # the TLS handshake
        return requests.ReadTimeout(_read_timeout(origin, timeout), request=prepared)
    if isinstance(error, ssl.SSLError | ssl.CertificateError | urllib3.exceptions.SSLError):
        reason = (
            error
            if isinstance(error, urllib3.exceptions.SSLError)
            else urllib3.exceptions.SSLError(error)
        )
        failed = MaxRetryError(origin.pool(), origin.path, reason)
        return requests.exceptions.SSLError(failed, request=prepared)
    if isinstance(error, urllib3.exceptions.HTTPError):
        failed = MaxRetryError(origin.pool(), origin.path, error)
        return requests.ConnectionError(failed, request=prepared)
    if isinstance(error, OSError):  # the provider broke off the TLS handshake
        aborted = ProtocolError("Connection aborted.", error)
        return requests.ConnectionError(aborted, request=prepared)
    return error


def _body_error(error: BaseException, origin: Origin) -> BaseException:
    if _timed_out(error):
        return requests.ConnectionError(ReadTimeoutError(origin.pool(), None, "Read timed out."))
    if isinstance(error, ssl.SSLError):
        return requests.exceptions.SSLError(urllib3.exceptions.SSLError(error))
    if isinstance(error, ProtocolError) and not isinstance(error, http.client.HTTPException):
        return requests.exceptions.ChunkedEncodingError(error)
    if isinstance(error, OSError | http.client.HTTPException):  # (IncompleteRead among them)
        broken = ProtocolError(f"Connection broken: {error!r}", error)
        return requests.exceptions.ChunkedEncodingError(broken)
    return error
