"""The decrypted credentials of one association: the type both the token store and the
provider backends speak.

It lives here, not in ``integrations``, because backends are plain Python Social Auth
backends that must import nothing from the app (the app imports them, never the reverse).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# social-core's line between a lifetime and an absolute time in an expiry field (two years,
# in seconds: UserMixin._handle_expires_field): no token lives that long, no epoch is that
# early. Read by the token store and by declared backends alike.
ABSOLUTE_AFTER = 63_072_000


@dataclass(frozen=True, repr=False)
class Credentials:
    """Decrypted credentials of one association. Its repr never shows a token."""

    access_token: str
    refresh_token: str | None
    token_type: str
    scope: str
    expires_at: int | None
    status: str

    def __repr__(self) -> str:
        return (
            f"Credentials(token_type={self.token_type!r}, scope={self.scope!r}, "
            f"expires_at={self.expires_at!r}, status={self.status!r}, "
            f"access_token=<{fingerprint(self.access_token)}>)"
        )

    __str__ = __repr__

    def expires_within(self, seconds: float, *, now: float) -> bool:
        """Return True when the access token is expired or expires within `seconds`."""
        return self.expires_at is not None and self.expires_at - now <= seconds


def fingerprint(token: str | None) -> str:
    """Return the last 6 hex digits of the token's SHA-256: enough to compare, useless to use."""
    if not token:
        return "none"
    return hashlib.sha256(token.encode()).hexdigest()[-6:]
