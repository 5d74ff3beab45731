"""Which hosts may receive a provider's token, decided on the URL exactly as it will be sent.

A token may only go to the origins (scheme, host, port) of the provider's API base URL and of
the hosts the provider declares. The check runs on the *final* URL, after relative URLs are
resolved, with the strict reading of backends/origins.py: anything URL parsers could read
differently is refused rather than interpreted.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from backends.origins import Origin, UnsafeURL, describe, origin_of, refuse_unsafe_characters

__all__ = ["OriginGuard", "UnsafeURL"]


class OriginGuard:
    """The origins one provider's token may go to, and the resolution of request URLs."""

    def __init__(self, base_url: str, other_hosts: Iterable[str] = ()) -> None:
        # No base URL (a backend with no profile and no SOCIAL_AUTH_<NAME>_API_BASE_URL):
        # relative URLs are refused, absolute ones must be on `other_hosts`.
        self.base_url = base_url.rstrip("/") + "/" if base_url else ""
        self.origins: frozenset[Origin] = frozenset(
            origin_of(url) for url in (self.base_url, *other_hosts) if url
        )

    def allows(self, url: str) -> bool:
        """Return whether `url` (absolute) may receive the token."""
        try:
            return origin_of(url) in self.origins
        except UnsafeURL:
            return False

    def resolve(self, url: str) -> str:
        """Return the absolute URL a request for `url` goes to, or raise UnsafeURL.

        Paths resolve under the API base (``/accounts`` and ``accounts`` alike); absolute
        URLs must already name an allowed origin.
        """
        # Before urljoin, which (like urlsplit) silently drops leading controls and spaces.
        refuse_unsafe_characters(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            raise UnsafeURL("it is not a well-formed URL") from None
        if parts.scheme or parts.netloc or url.startswith("//"):
            resolved = url
        elif not self.base_url:
            raise UnsafeURL(
                "a relative URL needs an API base URL, and none is configured for it (set "
                "SOCIAL_AUTH_<NAME>_API_BASE_URL, or pass an absolute URL on its API hosts)"
            )
        else:
            resolved = urljoin(self.base_url, url.lstrip("/"))
        origin = origin_of(resolved)
        if origin not in self.origins:
            allowed = ", ".join(sorted(describe(allowed) for allowed in self.origins))
            raise UnsafeURL(
                f"{describe(origin)} is not among its hosts ({allowed or 'none configured'})"
            )
        return resolved
