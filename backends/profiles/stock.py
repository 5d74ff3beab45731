"""Profiles of popular social-core backends, from each provider's documentation."""

from __future__ import annotations

from backends.profiles import register

register()
