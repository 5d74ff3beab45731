"""Custodian's public API::

    from integrations import get_session, get_token, refresh
    from integrations import NotConnected, ReauthRequired, RefreshFailed, ForeignHostRefused

Imported lazily: importing models at package import time would break app loading. No
sub-package may be named like a public name: once imported, a sub-package `refresh` would
shadow the `refresh` function (hence `integrations.refreshing`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "get_session": "integrations.api.session",
    "get_token": "integrations.api.session",
    "refresh": "integrations.refreshing.single_flight",
    "CustodianError": "integrations.exceptions",
    "NotConnected": "integrations.exceptions",
    "MultipleAccounts": "integrations.exceptions",
    "ReauthRequired": "integrations.exceptions",
    "RefreshFailed": "integrations.exceptions",
    "AwaitingApproval": "integrations.exceptions",
    "CredentialsUnreadable": "integrations.exceptions",
    "ProviderNotOffered": "integrations.exceptions",
    "ForeignHostRefused": "integrations.exceptions",
    "connection_approved": "integrations.signals",
    "credentials_refreshed": "integrations.signals",
    "reauth_required": "integrations.signals",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'integrations' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
