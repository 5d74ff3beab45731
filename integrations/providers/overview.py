"""What an operator checks first: every enabled provider, as Custodian will treat it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from social_core.exceptions import SocialAuthBaseException
from social_django.utils import load_strategy

from backends.profiles import has_profile
from integrations.providers.registry import (
    is_configured,
    keepalive_periods,
    profile,
    provider_classes,
    title_of,
)


@dataclass(frozen=True)
class ProviderOverview:
    """One provider in `manage.py providers`."""

    name: str
    title: str
    backend: str
    profile: str
    configured: bool
    api_base_url: str
    api_hosts: list[str]
    revocation: str
    refresh: str
    keepalive_seconds: float | None
    # Where people are sent: the provider's apps page and sign-out page ("" when unknown),
    # and the parameters "Connect another account" sends.
    connected_apps_url: str
    sign_out_url: str
    select_account: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def overview() -> list[ProviderOverview]:
    """Describe every enabled provider (never calls a provider: a base that depends on the
    association, or on a discovery document not fetched yet, is shown as its rule)."""
    strategy = load_strategy()
    keepalive = keepalive_periods()
    found = []
    for name, backend_class in sorted(provider_classes().items()):
        backend = backend_class(strategy, redirect_uri=None)
        prof = profile(name)
        if name in settings.CUSTODIAN_PROVIDERS:
            kind = "declared in CUSTODIAN_PROVIDERS"
        elif has_profile(name):
            kind = "built in"
        else:
            kind = "none (safe defaults)"
        found.append(
            ProviderOverview(
                name=name,
                title=title_of(name, backend_class),
                backend=f"{backend_class.__module__}.{backend_class.__qualname__}",
                profile=kind,
                configured=is_configured(backend),
                api_base_url=_base(prof, backend),
                api_hosts=list(prof.hosts(backend)),
                revocation=prof.describe_revocation(backend),
                refresh=prof.refresh or "refresh tokens as the provider issues them",
                keepalive_seconds=keepalive.get(name),
                connected_apps_url=prof.connected_apps_url,
                sign_out_url=prof.sign_out_url,
                select_account=dict(prof.select_account),
            )
        )
    return found


def _base(prof: Any, backend: Any) -> str:
    try:
        base = prof.base_url(backend, {})
    except (SocialAuthBaseException, KeyError, ValueError, TypeError):
        base = ""
    if base:
        return base
    if isinstance(prof.api_base_url, str) and prof.api_base_url:
        return f"{prof.api_base_url} (from each account's stored data)"
    name = backend.name.upper().replace("-", "_")
    return f"none: only absolute URLs on its API hosts (set SOCIAL_AUTH_{name}_API_BASE_URL)"
