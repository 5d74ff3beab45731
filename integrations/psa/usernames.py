"""Readable usernames for users a provider login creates (replaces social-core's
``get_username``, which appends a uuid hash whenever the name is taken: ``alice99d8c3a5…``).

The name comes from what the provider tells about the person — their handle, full name or
the local part of their e-mail address — made into a plain lowercase ASCII name Django
accepts (``José García`` → ``jose-garcia``). When it is taken (ignoring case, so ``Alice``
never sits beside ``alice``) a number follows: ``alice``, ``alice2``, ``alice3``…
A provider's "username" that is only its account id (Monzo's ``user_00009…``) gives way to
a real name or e-mail when there is one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from social_core.pipeline.user import USER_FIELDS

from integrations.models import User

# Room for a long suffix within the field's 150 characters; names this long are rare.
MAX_BASE = 40
FALLBACK = "user"


def get_username(
    strategy: Any, details: dict[str, Any], backend: Any, user: Any = None, *args: Any,
    uid: str = "", **kwargs: Any,
) -> dict[str, Any] | None:
    """Pipeline step: a free, readable username for the user about to be created."""
    if "username" not in backend.setting("USER_FIELDS", USER_FIELDS):
        return None
    if user is not None:
        return {"username": user.get_username()}
    return {"username": free_username(base_name(details, uid))}


def base_name(details: dict[str, Any], uid: str = "") -> str:
    """The name to start from: the first of handle, full name, e-mail local part that
    gives one (a handle equal to the account id only when nothing else does)."""
    handle = _text(details.get("username"))
    email = _text(details.get("email"))
    candidates = [
        handle if handle != uid else "",
        _text(details.get("fullname"))
        or " ".join(filter(None, (_text(details.get(key)) for key in ("first_name", "last_name")))),
        email.split("@", 1)[0],
        handle,
    ]
    for candidate in candidates:
        name = clean(candidate)
        if name:
            return name
    return FALLBACK


def clean(value: str) -> str:
    """Lowercase ASCII letters and digits, with single ``-``, ``_`` or ``.`` between words.
    Accents are dropped and symbols separate words; letters of other scripts turn the
    candidate down (the next one is tried)."""
    kept = []
    for char in unicodedata.normalize("NFKD", value).lower():
        if char.isascii():
            kept.append(char)
        elif unicodedata.category(char)[0] in "LN":
            return ""  # half a name misleads: a Cyrillic "a" dropped turns "alice" into "lice"
        elif not unicodedata.combining(char):
            kept.append(" ")  # a symbol or emoji: a space between words
    name = re.sub(r"[^a-z0-9._-]+", "-", "".join(kept))
    name = re.sub(r"[._-]*([._-])[._-]*", r"\1", name).strip("._-")
    return name[:MAX_BASE].rstrip("._-")


def free_username(base: str) -> str:
    """`base`, or `base` with the smallest number from 2 that makes it free."""
    separator = "-" if base[-1:].isdigit() else ""
    pattern = rf"^{re.escape(base)}({re.escape(separator)}[0-9]+)?$"
    taken = {
        name.lower()
        for name in User.objects.filter(username__iregex=pattern).values_list(
            "username", flat=True
        )
    }
    if base not in taken:
        return base
    number = 2
    while f"{base}{separator}{number}" in taken:
        number += 1
    return f"{base}{separator}{number}"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
