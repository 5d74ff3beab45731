"""Read settings from the environment (and a `.env` file) in one place."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# Values already in the environment win over the file, so CI and tests can override it.
load_dotenv(BASE_DIR / ".env", override=False)


def env_str(name: str, default: str = "") -> str:
    """Return the variable, or `default` when unset or empty."""
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    """Parse yes/no style values; anything unrecognised is a configuration error."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    """Parse an integer setting with a clear error on nonsense."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    """Split a comma-separated variable into its non-empty parts."""
    return [part.strip() for part in env_str(name, default).split(",") if part.strip()]


def env_json(name: str, default: Any) -> Any:
    """Parse a JSON variable (used for provider declarations)."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {error}") from None


def social_auth_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return every SOCIAL_AUTH_* variable as the Django setting of the same name.

    Python Social Auth documents its configuration as settings (SOCIAL_AUTH_OIDC_KEY,
    SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS, ...); this lets a site configure any stock
    backend from its environment. JSON objects and arrays (a value starting with { or [) and
    the booleans true/false are parsed; everything else stays a string, since client ids and
    secrets can look like numbers.
    """
    environ = os.environ if environ is None else environ
    parsed: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("SOCIAL_AUTH_") or name == "SOCIAL_AUTH_":
            continue
        value = raw.strip()
        if value[:1] in ("{", "["):
            try:
                parsed[name] = json.loads(value)
            except json.JSONDecodeError as error:
                raise ImproperlyConfigured(f"{name} is not valid JSON: {error}") from None
        elif value.lower() in ("true", "false"):
            parsed[name] = value.lower() == "true"
        else:
            parsed[name] = raw
    return parsed
