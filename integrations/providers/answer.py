"""An HTTP/1.1 answer as wire.py reads it, by the rules requests' stack applies: its status
line and headers as http.client reads them, its framing (chunked, a length, or to the end of
the connection) as urllib3 and http.client decide it, and the ``requests.Response`` requests'
adapter builds from it.

A head whose every header line is plain (a token, a colon, a value of visible ASCII without
trailing space, CRLF endings) is split directly; any other goes through http.client's own
``parse_headers`` and urllib3's unfolding of obsolete line folds, so that an odd head (a line
without a colon, a bare CR, Latin-1, folds) reads exactly as requests reads it.
"""

from __future__ import annotations

import http.client
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests
import urllib3
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import DecodeError

# http.client's limits on an answer's head: a line (with its line break), the header lines.
MAX_LINE = 65536
MAX_HEADERS = 100
_PLAIN_LINE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*(?:[!-~](?:[ -~]*[!-~])?)?")
# urllib3's unfolding of an obsolete line fold (urllib3/connection.py, _OBSOLETE_FOLD_RE).
_FOLD = re.compile(r"(?:(?<![ \t])[ \t]+)?\r\n[ \t]+")
_NO_BODY = frozenset({204, 304})


class ConflictingLength(Exception):
    """Content-Length values that disagree (urllib3: InvalidHeader)."""


@dataclass(slots=True)
class Head:
    """An answer's status line and its headers, in the order and case they came; `joined`
    has each header once, by its lower-case name: named as first seen, repeated values
    joined by ", " (as urllib3 joins them); `first` its first value (as http.client reads
    the headers that frame the body)."""

    version: int
    status: int
    reason: str
    headers: list[tuple[str, str]]
    joined: dict[str, tuple[str, str]]
    first: dict[str, str]

    def get(self, name: str) -> str | None:
        """The value of the header of this lower-case name, repeated ones joined."""
        found = self.joined.get(name)
        return found[1] if found else None


@dataclass(slots=True)
class Framing:
    """How the body is delimited: `chunked`, else `length` bytes (None: up to the end of
    the connection, then checked against urllib3's `expected` length when there is one);
    `close`: the connection ends with this answer."""

    chunked: bool
    length: int | None
    expected: int | None
    close: bool


def parse_head(raw: bytes) -> Head:
    """The status line and headers of `raw` (its lines with their line breaks; the last one
    may lack its own when the connection ended), read as http.client reads them; raises
    http.client's exceptions where it raises them."""
    end = raw.find(b"\n") + 1 or len(raw)
    if end > MAX_LINE:
        raise http.client.LineTooLong("status line")
    version, status, reason = _status(str(raw[:end], "iso-8859-1"))
    headers = _headers(raw[end:])
    joined: dict[str, tuple[str, str]] = {}
    first: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        seen = joined.get(key)
        joined[key] = (seen[0], f"{seen[1]}, {value}") if seen else (name, value)
        first.setdefault(key, value)
    return Head(version, status, reason, headers, joined, first)


def _status(line: str) -> tuple[int, int, str]:
    """http.client's reading of a status line: (version 10 or 11, status, reason)."""
    try:
        version, status, reason = line.split(None, 2)
    except ValueError:
        try:
            version, status = line.split(None, 1)
            reason = ""
        except ValueError:
            version = ""
    if not version.startswith("HTTP/"):
        raise http.client.BadStatusLine(line)
    try:
        code = int(status)
    except ValueError:
        raise http.client.BadStatusLine(line) from None
    if code < 100 or code > 999:
        raise http.client.BadStatusLine(line)
    if version in ("HTTP/1.0", "HTTP/0.9"):
        return 10, code, reason.strip()
    if version.startswith("HTTP/1."):
        return 11, code, reason.strip()
    raise http.client.UnknownProtocol(version)


def check_partial_head(raw: bytes) -> None:
    """Raise what http.client raises on the part of a head that has come so far: a status
    line that is no HTTP, a line too long, more header lines than it takes."""
    end = raw.find(b"\n") + 1
    if not end:
        if len(raw) > MAX_LINE:
            raise http.client.LineTooLong("status line")
        return
    if end > MAX_LINE:
        raise http.client.LineTooLong("status line")
    _status(str(raw[:end], "iso-8859-1"))
    lines = raw[end:].split(b"\n")  # the last one is still coming
    _check_lines(lines[:-1], blank=False)
    if len(lines[-1]) >= MAX_LINE:
        raise http.client.LineTooLong("header line")


def _check_lines(lines: list[bytes], *, blank: bool) -> None:
    """http.client's limits: each line (with its line break) at most MAX_LINE bytes, and at
    most MAX_HEADERS lines counting the empty line (or end) that closes the head."""
    if max(map(len, lines), default=0) >= MAX_LINE:
        raise http.client.LineTooLong("header line")
    if len(lines) + blank > MAX_HEADERS:
        raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")


def _headers(block: bytes) -> list[tuple[str, str]]:
    lines = block.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    _check_lines(lines, blank=True)
    text = block.decode("iso-8859-1")
    plain = text.split("\r\n")
    if plain[-1] == "":
        plain.pop()
    if all(_PLAIN_LINE.fullmatch(line) for line in plain):
        headers = []
        for line in plain:
            name, _, value = line.partition(":")
            headers.append((name, value.lstrip(" \t")))
        return headers
    message = http.client.parse_headers(io.BytesIO(block + b"\r\n"))
    return [(name, _FOLD.sub(" ", value)) for name, value in message.items()]


def framing(head: Head, method: str) -> Framing:
    """How the body of this answer is delimited, as urllib3 (chunked, its length check) and
    http.client (the length it reads, whether the connection stays open) decide it."""
    encodings = (part.strip() for part in (head.get("transfer-encoding") or "").lower().split(","))
    chunked = "chunked" in encodings
    expected = None
    joined_length = head.get("content-length")
    if joined_length is not None and not chunked:
        try:
            lengths = {int(value) for value in joined_length.split(",")}
        except ValueError:
            pass
        else:
            if len(lengths) > 1:
                raise ConflictingLength(
                    f"Content-Length contained multiple unmatching values ({joined_length})"
                )
            expected = lengths.pop()
            if expected < 0:
                expected = None
    close = will_close(head)
    if method == "HEAD":
        return Framing(False, 0, None, close)
    if chunked:  # (also for a 204 or 304: urllib3 reads the chunks regardless)
        # http.client reads only "chunked" itself as chunked; for anything else (gzip,
        # chunked) without a length it lets the connection go after the answer.
        own = (head.first.get("transfer-encoding") or "").lower() == "chunked"
        return Framing(True, None, None, close or not (own or _number(head)))
    if head.status in _NO_BODY:
        return Framing(False, 0, None, close)
    if 100 <= head.status < 200:  # an interim answer taken as final: the real one follows
        return Framing(False, 0, None, True)
    length = _number(head)
    if length is None:
        return Framing(False, None, expected, True)
    return Framing(False, length, None, close)


def _number(head: Head) -> int | None:
    """The length http.client reads from the first Content-Length (None: none, no number,
    or negative)."""
    first = head.first.get("content-length")
    if not first:
        return None
    try:
        length = int(first)
    except ValueError:
        return None
    return length if length >= 0 else None


def will_close(head: Head) -> bool:
    """Whether the provider ends the connection after this answer (http.client's rule)."""
    connection = (head.first.get("connection") or "").lower()
    if head.version == 11:
        return "close" in connection
    if head.first.get("keep-alive") or "keep-alive" in connection:
        return False
    return "keep-alive" not in (head.first.get("proxy-connection") or "").lower()


class _Message:
    """The answer's headers as ``http.client.HTTPMessage`` offers them to a cookie jar."""

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._headers = headers

    def get_all(self, name: str, failobj: Any = None) -> Any:
        values = [value for key, value in self._headers if key.lower() == name.lower()]
        return values or failobj


class _Original:
    """The parts of ``http.client.HTTPResponse`` read through ``raw._original_response``: the
    headers requests reads cookies from (also on a redirect), and a closed state for urllib3."""

    def __init__(self, headers: list[tuple[str, str]], method: str) -> None:
        self.msg = _Message(headers)
        self._method = method

    def isclosed(self) -> bool:
        return True

    def close(self) -> None:
        pass


def build_response(
    prepared: requests.PreparedRequest,
    adapter: requests.adapters.HTTPAdapter,
    head: Head,
    body: bytes,
) -> requests.Response:
    """The ``requests.Response`` the adapter builds for this answer, its content read.
    Raises ContentDecodingError where requests does (a compressed body that is not)."""
    method = prepared.method or "GET"
    response = requests.Response()
    response.status_code = head.status
    response.reason = head.reason
    response.headers = CaseInsensitiveDict(dict(head.joined.values()))
    response.encoding = get_encoding_from_headers(response.headers)
    response.url = str(prepared.url)
    response.request = prepared
    response.connection = adapter
    response.raw = raw = _Raw(head, method, response.url)
    coding = head.get("content-encoding")
    if coding:
        try:
            body = _decoded(body, coding, head)
        except requests.exceptions.ContentDecodingError:
            if not response.is_redirect:
                raise
            # requests follows a redirect whose body does not decode; its body stays raw.
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]
    if "set-cookie" in head.joined:
        extract_cookies_to_jar(response.cookies, prepared, raw)
    return response


def _decoded(body: bytes, coding: str, head: Head) -> bytes:
    """The body as urllib3 decodes it for requests (gzip, deflate, and br or zstd when their
    libraries are installed, as requests advertises them; anything else stays as it is)."""
    coded = urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers={"Content-Encoding": coding},
        status=head.status,
        preload_content=False,
        decode_content=True,
    )
    try:
        return coded.read()
    except DecodeError as error:
        raise requests.exceptions.ContentDecodingError(error) from None


class _Raw:
    """``response.raw`` for an answer already read in full: what is read from the adapter's
    ``urllib3.HTTPResponse`` once the content is consumed (status, reason, version, headers,
    the original answer's headers, which requests reads cookies from, also when following a
    redirect; nothing left to read). Building urllib3's own cost a fifth of a call's CPU."""

    closed = True
    data = b""

    def __init__(self, head: Head, method: str, url: str) -> None:
        self._head = head
        self.status = head.status
        self.reason = head.reason
        self.version = head.version
        self.version_string = "HTTP/1.0" if head.version == 10 else "HTTP/1.1"
        self.url = url
        self._original_response = _Original(head.headers, method)

    @cached_property
    def headers(self) -> HTTPHeaderDict:
        return HTTPHeaderDict(self._head.headers)

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return b""

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        return iter(())

    def isclosed(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass
