"""Development encryption key, derived in settings so no import of the app is needed there."""

from __future__ import annotations

import base64
import hashlib


def derive_development_key(secret_key: str) -> str:
    """Return a Fernet key derived from SECRET_KEY (development only)."""
    digest = hashlib.sha256(b"custodian.token-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()
