"""Which providers the site offers, and their backends outside a request."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from social_core.backends.utils import load_backends
from social_django.utils import load_backend, load_strategy

from backends.base import CustodianBackend
from integrations.exceptions import ProviderNotOffered


@dataclass(frozen=True)
class ProviderInfo:
    """What the pages need to offer a provider."""

    name: str
    title: str
    configured: bool


def provider_classes() -> dict[str, type[CustodianBackend]]:
    """Return the Custodian backends enabled in AUTHENTICATION_BACKENDS, by name (a declared
    provider only while its declaration exists)."""
    return {
        name: backend
        for name, backend in load_backends(settings.AUTHENTICATION_BACKENDS).items()
        if issubclass(backend, CustodianBackend)
        and getattr(backend, "is_declared", lambda: True)()
    }


def available_providers() -> list[ProviderInfo]:
    """Return every provider with its title and whether it has a client configured."""
    strategy = load_strategy()
    providers = [
        ProviderInfo(
            name=name, title=backend.get_title(strategy), configured=backend.is_configured()
        )
        for name, backend in provider_classes().items()
    ]
    # Usable ones first; "not configured" ones stay visible, last.
    return sorted(providers, key=lambda provider: not provider.configured)


def provider_title(name: str) -> str:
    """Return a provider's display title, or its name when it is not enabled."""
    backend = provider_classes().get(name)
    return backend.get_title(load_strategy()) if backend else name


def is_offered(name: str) -> bool:
    """Return True when `name` is a provider enabled on this site."""
    return name in provider_classes()


def backend_instance(name: str, request: HttpRequest | None = None) -> CustodianBackend:
    """Return a backend instance usable outside the login flow (refresh, revoke, API).

    Raises ProviderNotOffered when the provider was removed from the settings: its stored
    associations outlive it, and callers must be able to say so instead of crashing.
    """
    if not is_offered(name):
        raise ProviderNotOffered(name)
    return load_backend(load_strategy(request), name, redirect_uri=None)
