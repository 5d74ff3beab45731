"""An HTTP/1.1 answer as wire.py reads it: its head parsed as http.client parses it, how
its body is framed, and the ``requests.Response`` requests' adapter would build from it."""

from __future__ import annotations

import io
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

# http.client's limits on an answer's head: a line, and the number of header lines.
MAX_LINE = 65536
MAX_HEADERS = 100


class NotHTTP(Exception):
    """The answer is not HTTP/1.x as http.client reads it (wire.py: a ProtocolError)."""


@dataclass(frozen=True)
class Head:
    """An answer's status line and its headers, in the order and case they came."""

    version: int
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        """The header's values joined by ", " (as urllib3 joins repeated headers)."""
        values = [value for key, value in self.headers if key.lower() == name]
        return ", ".join(values) if values else None


def parse_head(raw: bytes) -> Head:
    """The status line and headers, as http.client reads them (header lines without a colon
    are skipped, folded lines join the header before them)."""
    lines = raw.decode("iso-8859-1").split("\n")
    status_line = lines[0].rstrip("\r")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise NotHTTP("the answer does not start with an HTTP status line")
    version = 10 if parts[0] == "HTTP/1.0" else 11
    if not (len(parts[1]) == 3 and parts[1].isascii() and parts[1].isdigit()):
        raise NotHTTP("the answer's status is not a number")
    status = int(parts[1])
    if status < 100:
        raise NotHTTP("the answer's status is not a number")
    if len(lines) > MAX_HEADERS + 1:
        raise NotHTTP("the answer has too many headers")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        line = line.rstrip("\r")
        if len(line) > MAX_LINE:
            raise NotHTTP("a line of the answer is too long")
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon and name and name == name.strip():
            headers.append((name, value.strip()))
    return Head(version, status, parts[2].strip() if len(parts) > 2 else "", headers)


def will_close(head: Head) -> bool:
    """Whether the provider ends the connection after this answer (http.client's rule)."""
    connection = (head.get("connection") or "").lower()
    if head.version == 11:
        return "close" in connection
    return not (head.get("keep-alive") or "keep-alive" in connection)


def content_length(head: Head) -> int | None:
    """The body's length from Content-Length; None when there is none or it is no number
    (then the body runs to the end of the connection)."""
    value = head.get("content-length")
    if value is None:
        return None
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1:
        raise NotHTTP("the answer has conflicting Content-Length headers")
    length = lengths.pop()
    if not (length.isascii() and length.isdigit()):
        return None
    return int(length)


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
    """The ``requests.Response`` the adapter would build for this answer."""
    method = prepared.method or "GET"
    response = requests.Response()
    response.status_code = head.status
    response.reason = head.reason
    joined: dict[str, tuple[str, str]] = {}  # repeated headers joined, named as first seen
    for name, value in head.headers:
        key = name.lower()
        first = joined.get(key)
        joined[key] = (first[0], f"{first[1]}, {value}") if first else (name, value)
    response.headers = CaseInsensitiveDict(dict(joined.values()))
    response.encoding = get_encoding_from_headers(response.headers)
    response.url = str(prepared.url)
    response.request = prepared
    response.connection = adapter
    response.raw = raw = _Raw(head, method)
    encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
    if encoding and encoding != "identity":
        body = _decoded(body, encoding, head, prepared)
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]
    if "Set-Cookie" in response.headers:
        extract_cookies_to_jar(response.cookies, prepared, raw)
    return response


def _decoded(body: bytes, encoding: str, head: Head, prepared: requests.PreparedRequest) -> bytes:
    """The body decoded by urllib3's own decoders (gzip, deflate, and br or zstd when their
    libraries are installed, as requests advertises them); an unknown coding stays as is."""
    coded = urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers={"Content-Encoding": encoding},
        status=head.status,
        preload_content=False,
        decode_content=True,
    )
    try:
        return coded.read()
    except DecodeError as error:
        raise requests.exceptions.ContentDecodingError(error, request=prepared) from None


class _Raw:
    """``response.raw`` for an answer already read in full: what is read from the adapter's
    ``urllib3.HTTPResponse`` once the content is consumed (status, reason, version, headers,
    the original answer's headers, which requests reads cookies from, also when following a
    redirect; nothing left to read). Building urllib3's own cost a fifth of a call's CPU."""

    closed = True

    def __init__(self, head: Head, method: str) -> None:
        self._head = head
        self.status = head.status
        self.reason = head.reason
        self.version = head.version
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
