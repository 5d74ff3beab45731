"""Import path for declared providers: ``backends.declared.<name>`` in AUTHENTICATION_BACKENDS.

Python Social Auth loads backends by dotted path, so each provider declared in
``settings.CUSTODIAN_PROVIDERS`` is exposed here as a module attribute, built on first use.
"""

from __future__ import annotations

from functools import cache

from social_core.backends.oauth import BaseOAuth2

from backends.generic import declared_backend


@cache
def __getattr__(name: str) -> type[BaseOAuth2]:
    if name.startswith("__"):
        raise AttributeError(name)
    return declared_backend(name)
