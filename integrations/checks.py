"""System checks: fail loudly and early on provider configuration mistakes."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from backends.generic import ProviderDeclaration
from site_config.keys import fernet_key_problem


@register()
def check_providers(app_configs, **kwargs) -> list:
    problems: list = []
    for name in settings.CUSTODIAN_PROVIDERS:
        try:
            declaration = ProviderDeclaration.from_settings(name)
        except ImproperlyConfigured as error:
            problems.append(Error(str(error), id="custodian.E001"))
            continue
        if declaration.client_id and not declaration.client_secret:
            problems.append(
                Error(f"Provider {name!r} has a client id but no client secret",
                      id="custodian.E002")
            )
    if settings.MONZO_CLIENT_ID and not settings.MONZO_CLIENT_SECRET:
        problems.append(
            Error("MONZO_CLIENT_ID is set but MONZO_CLIENT_SECRET is not; Monzo gives refresh "
                  "tokens only to confidential clients", id="custodian.E003")
        )
    return problems


@register()
def check_encryption_key(app_configs, **kwargs) -> list:
    problem = fernet_key_problem(list(settings.CUSTODIAN_ENCRYPTION_KEYS))
    if problem:
        return [Error(problem, id="custodian.E004")]
    if settings.CUSTODIAN_ENCRYPTION_KEY_DERIVED:
        return [
            Warning(
                "CUSTODIAN_ENCRYPTION_KEYS is not set: tokens are encrypted with a key derived "
                "from SECRET_KEY. Set it before going to production.",
                id="custodian.W001",
            )
        ]
    return []
