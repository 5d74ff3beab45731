"""System checks: fail loudly and early on provider configuration mistakes."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string
from social_core.backends.base import BaseAuth
from social_core.backends.oauth import BaseOAuth2

from backends.declaration import ProviderDeclaration
from backends.declaration import problems as declaration_problems
from site_config.keys import fernet_key_problem


@register()
def check_providers(app_configs, **kwargs) -> list:
    """Every problem of every declaration, each naming the provider and the key."""
    problems: list = []
    for name, raw in settings.CUSTODIAN_PROVIDERS.items():
        found = declaration_problems(name, raw)
        problems += [Error(problem, id="custodian.E001") for problem in found]
        if found:
            continue
        declaration = ProviderDeclaration.from_settings(name)
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
def check_backends(app_configs, **kwargs) -> list:
    """Every path in CUSTODIAN_BACKENDS is a Python Social Auth backend that can be loaded."""
    problems: list = []
    for path in getattr(settings, "CUSTODIAN_BACKENDS", []):
        try:
            backend = import_string(path)
        except ImportError as error:
            problems.append(
                Error(f"CUSTODIAN_BACKENDS names {path!r}, which cannot be imported ({error})",
                      id="custodian.E005")
            )
            continue
        if not (isinstance(backend, type) and issubclass(backend, BaseAuth)):
            problems.append(
                Error(f"CUSTODIAN_BACKENDS names {path!r}, which is not a Python Social Auth "
                      "backend", id="custodian.E005")
            )
        elif not issubclass(backend, BaseOAuth2):
            problems.append(
                Warning(f"{path} is not an OAuth 2.0 backend: people can log in with it, but "
                        "Custodian does not keep, refresh or revoke its credentials",
                        id="custodian.W002")
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
