"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from integrations.providers.registry import available_providers


def providers(request: HttpRequest) -> dict[str, object]:
    """Expose the providers the site offers (configured or not) as `providers`."""
    return {"providers": SimpleLazyObject(available_providers)}
