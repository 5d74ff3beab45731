"""A prepared request as the bytes urllib3 writes through http.client (wire.py sends them)."""

from __future__ import annotations

import requests
import urllib3
from urllib3.util import SKIP_HEADER

DEFAULT_PORTS = {"http": 80, "https": 443}
# Methods for which urllib3 adds no "Content-Length: 0" to a request without a body.
_NO_BODY_EXPECTED = frozenset({"GET", "HEAD", "DELETE", "TRACE", "OPTIONS", "CONNECT"})
# What urllib3 sends when a request has no User-Agent of its own.
_URLLIB3_AGENT = f"User-Agent: python-urllib3/{urllib3.__version__}".encode("ascii")


def request_bytes(
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
        host_header = host.rstrip(".")  # as urllib3's connection names the host
        host_header = f"[{host_header}]" if ":" in host_header else host_header
        if port != DEFAULT_PORTS[scheme]:
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
        if value == SKIP_HEADER:
            return None
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
