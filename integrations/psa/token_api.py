"""Python Social Auth's own token API, working on Custodian's encrypted rows.

Code written against PSA reaches tokens as ``user.social_auth.get(provider=…)`` and calls
``.access_token``, ``.get_access_token(strategy)``, ``.refresh_token(strategy)`` and
``.access_token_expired()`` (social_core/storage.py, ``UserMixin``). Those read extra_data
as stock PSA writes it, so on Custodian's rows they would hand out ciphertext, never see an
expiry, and refresh without a lock (a second caller then spends a rotated refresh token and
the provider revokes the grant). Here they get Custodian's meaning:

- ``access_token``: the plaintext current token;
- ``get_access_token(strategy)``: a fresh token, refreshed single-flight when due;
- ``refresh_token(strategy)``: a refresh through the same single flight;
- ``access_token_expired()``: True or False from the stored absolute expiry.

Why installed on the class rather than through ``SOCIAL_AUTH_STORAGE``: social-app-django's
UserSocialAuth model is not swappable, and ``user.social_auth`` (the related manager its
foreign key creates) and ``UserSocialAuth.objects`` return instances of that very class, not
of a storage's model. A storage of ours would only change PSA's internal lookups; the
documented entry points would keep the stock behaviour. So `install()` (called once from
IntegrationsConfig.ready) sets these four attributes on the class, and nothing else.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from social_core.storage import UserMixin
from social_django.models import UserSocialAuth

from integrations.exceptions import CredentialsUnreadable
from integrations.refreshing.single_flight import refresh_if_due, renew
from integrations.store import crypto
from integrations.store.credentials import Credentials, Status, read_credentials


def _credentials(association: Any) -> Credentials:
    try:
        return read_credentials(association.extra_data or {})
    except crypto.DecryptionError:
        raise CredentialsUnreadable(association.provider, association.uid) from None


def access_token(self: Any) -> str | None:
    """The plaintext current access token (None when none is stored)."""
    return _credentials(self).access_token or None


def access_token_expired(self: Any) -> bool:
    """Whether the stored access token has expired (PSA's threshold: within 5 seconds).

    False when the provider gave no lifetime: such a token is used until the API rejects it.
    """
    return _credentials(self).expires_within(
        UserMixin.ACCESS_TOKEN_EXPIRED_THRESHOLD, now=time.time()
    )


def get_access_token(self: Any, strategy: Any = None) -> str:
    """A valid access token, refreshed first (single flight) when it is due.

    Raises ReauthRequired when only a new login helps, RefreshFailed when the provider
    could not be reached (the stored credentials are kept).
    """
    credentials = _credentials(self)
    fresh = not credentials.expires_within(settings.CUSTODIAN_REFRESH_LEEWAY, now=time.time())
    if fresh and credentials.status == Status.ACTIVE:
        return credentials.access_token  # no lock, no query: the common case
    return refresh_if_due(self).access_token


def refresh_token(self: Any, strategy: Any = None, *args: Any, **kwargs: Any) -> None:
    """Refresh now, through the single flight (a caller that waited while another refreshed
    the same token uses that result instead of spending the new refresh token again)."""
    renew(self, force=True)


def install(model: type = UserSocialAuth) -> None:
    """Give `model` (UserSocialAuth) Custodian's meaning of PSA's token API."""
    model.access_token = property(access_token)  # type: ignore[attr-defined]
    model.access_token_expired = access_token_expired  # type: ignore[attr-defined]
    model.get_access_token = get_access_token  # type: ignore[attr-defined]
    model.refresh_token = refresh_token  # type: ignore[attr-defined]
