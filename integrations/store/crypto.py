"""Authenticated encryption of token values at rest (Fernet, AES-128-CBC + HMAC-SHA256).

Keys come from ``settings.CUSTODIAN_ENCRYPTION_KEYS``: the first encrypts, all decrypt, so a
new key can be put in front and old rows re-encrypted at leisure (``rotate_encryption_keys``).
In development, with no key set, settings derive one from SECRET_KEY (a system check warns).

Every plaintext passing through here is registered in ``integrations.security.secrets_registry``, so
logs and error pages mask it by value wherever it shows up later (even bare, with no name).
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from integrations.security import secrets_registry

# Marks a stored value as ciphertext; values without it are rows written before encryption.
PREFIX = "enc:"


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            "CUSTODIAN_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64 bytes); "
            "make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from error


def configured_keys() -> tuple[str, ...]:
    """Return the keys in force (settings derive a development key when none is set)."""
    keys = tuple(settings.CUSTODIAN_ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured("CUSTODIAN_ENCRYPTION_KEYS is empty")
    return keys


def encrypt(value: str) -> str:
    """Return `value` encrypted under the first key, marked as ciphertext."""
    secrets_registry.register(value)  # first: encrypting may fail (a bad key) and be reported
    return PREFIX + _fernet(configured_keys()).encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    """Return the plaintext of a stored value; plaintext from before encryption passes through."""
    if not value.startswith(PREFIX):
        secrets_registry.register(value)
        return value
    try:
        plaintext = _fernet(configured_keys()).decrypt(value[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored token cannot be decrypted with any key in CUSTODIAN_ENCRYPTION_KEYS"
        ) from None
    secrets_registry.register(plaintext)
    return plaintext


def is_current(value: str) -> bool:
    """Return True when `value` is ciphertext under the first (current) key."""
    if not value.startswith(PREFIX):
        return False
    keys = configured_keys()
    try:
        Fernet(keys[0]).decrypt(value[len(PREFIX):].encode())
    except InvalidToken:
        return False
    return True
