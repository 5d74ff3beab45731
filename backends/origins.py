"""The origin (scheme, host, port) a URL reaches, read the way it will be sent.

Used by the session's origin guard (integrations/api/origins.py) and by the validation of a
declaration's `api_hosts` (backends/generic.py), so that what may be declared and what may
receive a token are one rule. It lives here because backends import nothing from the app.

The URL is read as two parsers see it (the standard library's and urllib3's, which
``requests`` sends with). Anything the parsers could read differently is refused outright
rather than interpreted: control characters and whitespace anywhere (``urlsplit`` silently
drops some of them, turning ``" //evil/x"`` into a scheme-relative URL), backslashes, user
info (``http://api@evil``), percent-encoded hosts, a trailing dot, a scheme not in lower case.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from urllib3.util import parse_url

Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# C0 controls, space, DEL, C1 controls and the backslash; other Unicode whitespace below.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\\]")
_UNSAFE_WHY = (
    "it holds control characters, whitespace or backslashes (percent-encode them, or pass "
    "query values with params=)"
)


class UnsafeURL(ValueError):
    """The URL is malformed or ambiguous; the message says why but never repeats the URL."""


def refuse_unsafe_characters(url: str) -> None:
    """Raise UnsafeURL when `url` holds anything a URL parser may silently drop or reread."""
    if _UNSAFE.search(url) or any(character.isspace() for character in url):
        raise UnsafeURL(_UNSAFE_WHY)


def origin_of(url: str) -> Origin:
    """Return the (scheme, host, port) a request to `url` would reach, or raise UnsafeURL."""
    refuse_unsafe_characters(url)
    try:
        return _origin_of(url)
    except UnsafeURL:
        raise
    except ValueError:  # urllib3's LocationParseError too; their messages repeat the URL
        raise UnsafeURL("it is not a well-formed URL") from None


def _origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in _DEFAULT_PORTS or not url.startswith(f"{scheme}://"):
        raise UnsafeURL("only absolute http:// and https:// URLs, in lower case, are sent")
    if "@" in parts.netloc or "%" in parts.netloc:
        raise UnsafeURL("user info and percent-encoded hosts are not accepted")
    host = parts.hostname or ""
    if not host or host.endswith("."):
        raise UnsafeURL("it names no host, or a host with a trailing dot")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise UnsafeURL("its port is not a number") from None
    # urllib3 is what requests sends with: both parsers must agree on where this goes.
    sent = parse_url(url)
    sent_host = (sent.host or "").lower().removeprefix("[").removesuffix("]")
    if (sent.scheme, sent_host, sent.port or _DEFAULT_PORTS[scheme]) != (
        scheme,
        host,
        port,
    ):
        raise UnsafeURL("it is read differently by different URL parsers")
    return scheme, host, port


def describe(origin: Origin) -> str:
    """Return `origin` as people write it: host, with the port only when it is not default."""
    scheme, host, port = origin
    return host if _DEFAULT_PORTS[scheme] == port else f"{host}:{port}"
