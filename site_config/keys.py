"""Development encryption key, derived in settings so no import of the app is needed there."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from django.core.exceptions import ImproperlyConfigured

FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")
MAKE_A_KEY = (
    "make one with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'"
)


def derive_development_key(secret_key: str) -> str:
    """Return a Fernet key derived from SECRET_KEY (development only)."""
    digest = hashlib.sha256(b"custodian.token-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def fernet_key_problem(keys: list[str]) -> str:
    """Return what is wrong with a list of Fernet keys ("" when nothing), never a key itself.

    A Fernet key is 32 bytes in url-safe base64: exactly 43 alphabet characters and "=".
    The shape is checked strictly, because base64 decoding skips characters outside its
    alphabet (a zero-width space, an accented letter) that Fernet itself then refuses.
    """
    for position, key in enumerate(keys, start=1):
        raw = b""
        if FERNET_KEY.fullmatch(key):
            try:
                raw = base64.urlsafe_b64decode(key.encode("ascii"))
            except (binascii.Error, ValueError):
                raw = b""
        if len(raw) != 32:
            return (
                f"CUSTODIAN_ENCRYPTION_KEYS: key {position} of {len(keys)} is not a Fernet key "
                f"(32 url-safe base64-encoded bytes); {MAKE_A_KEY}"
            )
    return ""


def check_fernet_keys(keys: list[str]) -> None:
    """Refuse to start with a malformed key, instead of failing on the first token stored."""
    problem = fernet_key_problem(keys)
    if problem:
        raise ImproperlyConfigured(problem)
