"""Profiles of popular social-core backends, from each provider's documentation.

Each family lives in its own module (code hosting, Google and Microsoft, applications,
identity providers); this one registers them all. docs/profiles.md tables them.
"""

from __future__ import annotations

from backends.profiles import (
    register,
    stock_apps,
    stock_code,
    stock_google_microsoft,
    stock_identity,
)

PROFILES = (
    *stock_code.PROFILES,
    *stock_google_microsoft.PROFILES,
    *stock_apps.PROFILES,
    *stock_identity.PROFILES,
)

register(*PROFILES)
