"""What the admin shows instead of secrets: fingerprints and masked extra_data."""

from __future__ import annotations

import logging
from typing import Any

from social_django.models import UserSocialAuth

from integrations.providers.registry import provider_title
from integrations.store import crypto
from integrations.store.credentials import SECRET_FIELDS, fingerprint

logger = logging.getLogger(__name__)

MASK = "••••••"




def masked(value: Any) -> str:
    """Return what an admin sees instead of a stored secret: a mask and its fingerprint."""
    if not isinstance(value, str) or not value:
        return f"{MASK} (empty)"
    try:
        plaintext = crypto.decrypt(value)
    except crypto.DecryptionError:
        return f"{MASK} (undecryptable with the configured keys)"
    return f"{MASK} (fp {fingerprint(plaintext)})"


def redacted(data: Any) -> Any:
    """Return a copy of `data` with every secret field and every ciphertext masked."""
    if isinstance(data, dict):
        return {
            key: masked(value) if key in SECRET_FIELDS else redacted(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redacted(item) for item in data]
    if isinstance(data, str) and data.startswith(crypto.PREFIX):
        return masked(data)
    return data


def token_fingerprint(association: UserSocialAuth, field: str) -> str:
    value = (association.extra_data or {}).get(field)
    if not value:
        return "none stored"
    try:
        return f"fp {fingerprint(crypto.decrypt(value))}"
    except crypto.DecryptionError:
        return "undecryptable with the configured keys"



def state_of(association: UserSocialAuth):
    # A reverse one-to-one: select_related caches a missing row as "absent", and the
    # RelatedObjectDoesNotExist it raises is an AttributeError.
    return getattr(association, "credential_state", None)


def label_of(association: UserSocialAuth) -> str:
    return f"{provider_title(association.provider)} account {association.uid} of {association.user}"
