"""Which providers the site offers, their profiles, and their backends outside a request.

A provider is any OAuth 2.0 backend in AUTHENTICATION_BACKENDS: social-core's own (enabled
with CUSTODIAN_BACKENDS), Monzo's, or a declared one. What Custodian adds to each comes from
its profile (backends/profiles/), looked up by name; nothing here assumes a backend class of
ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from social_core.backends.oauth import BaseOAuth2
from social_core.backends.open_id import OpenIdAuth
from social_core.backends.utils import load_backends
from social_django.utils import load_backend, load_strategy

from backends.profiles import Profile, profile_for
from integrations.exceptions import ProviderNotOffered


@dataclass(frozen=True)
class ProviderInfo:
    """What the pages need to offer a provider."""

    name: str
    title: str
    configured: bool


def provider_classes() -> dict[str, type[BaseOAuth2]]:
    """Return the OAuth 2.0 backends enabled in AUTHENTICATION_BACKENDS, by name (a declared
    provider only while its declaration exists)."""
    return {
        name: backend
        for name, backend in load_backends(settings.AUTHENTICATION_BACKENDS).items()
        if issubclass(backend, BaseOAuth2) and getattr(backend, "is_declared", lambda: True)()
    }


def uses_openid_1_2() -> bool:
    """Whether an OpenID 1/2 backend (not OpenID Connect) is enabled: only those use Python
    Social Auth's Association and Nonce tables."""
    return any(
        issubclass(backend, OpenIdAuth)
        for backend in load_backends(settings.AUTHENTICATION_BACKENDS).values()
    )


def profile(name: str) -> Profile:
    """The provider's profile (the safe default when it has none)."""
    return profile_for(name)


def title_of(name: str, backend: type[BaseOAuth2] | None = None) -> str:
    """The provider's title: the site's SOCIAL_AUTH_<NAME>_TITLE, the profile's, the backend's
    own `title`, or its name made readable."""
    configured = getattr(settings, f"SOCIAL_AUTH_{name.upper().replace('-', '_')}_TITLE", "")
    return str(
        configured
        or profile_for(name).title
        or getattr(backend, "title", "")
        or name.replace("-", " ").replace("_", " ").title()
    )


def is_configured(backend: Any) -> bool:
    """Whether the backend (an instance) has a client id, so that the site can say "not
    configured" instead of sending people to a provider that will refuse them."""
    try:
        client_id = backend.get_key_and_secret()[0]
    except Exception:
        return False
    return bool(client_id)


def available_providers() -> list[ProviderInfo]:
    """Return every provider with its title and whether it has a client configured."""
    strategy = load_strategy()
    providers = [
        ProviderInfo(
            name=name,
            title=title_of(name, backend),
            configured=is_configured(backend(strategy, redirect_uri=None)),
        )
        for name, backend in provider_classes().items()
    ]
    # Usable ones first; "not configured" ones stay visible, last.
    return sorted(providers, key=lambda provider: not provider.configured)


def provider_title(name: str) -> str:
    """Return a provider's display title; for one no longer enabled, its profile's title
    (a shipped profile outlives its backend), else its name."""
    backend = provider_classes().get(name)
    return title_of(name, backend) if backend else (profile_for(name).title or name)


def is_offered(name: str) -> bool:
    """Return True when `name` is a provider enabled on this site."""
    return name in provider_classes()


def backend_instance(name: str, request: HttpRequest | None = None) -> Any:
    """Return a backend instance usable outside the login flow (refresh, revoke, API).

    Raises ProviderNotOffered when the provider was removed from the settings: its stored
    associations outlive it, and callers must be able to say so instead of crashing.
    """
    if not is_offered(name):
        raise ProviderNotOffered(name)
    return load_backend(load_strategy(request), name, redirect_uri=None)


def keepalive_periods() -> dict[str, float]:
    """Seconds after which an idle grant is refreshed anyway, per provider: its profile's,
    overridden by CUSTODIAN_KEEPALIVE."""
    periods: dict[str, float] = {}
    for name in provider_classes():
        keepalive = profile_for(name).keepalive
        if keepalive:
            periods[name] = keepalive
    return {**periods, **settings.CUSTODIAN_KEEPALIVE}
