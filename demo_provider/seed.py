"""Idempotent seeding of the demo users and clients, run at every start."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from oauth2_provider.models import AbstractApplication, get_application_model


def seed(extra_redirect_uris: Iterable[str] = ()) -> None:
    """Create the demo users and (re)register the clients.

    The default redirect URIs are always registered and extra ones are added, so a
    caller passing its own URI never loses the defaults the site relies on.
    Passwords are only set on creation: hashing is deliberately slow.
    """
    extra = list(extra_redirect_uris)
    oauth2_uris = _joined(settings.DEFAULT_REDIRECT_URIS, extra)
    with transaction.atomic():
        for username in settings.DEMO_USERS:
            user, created = get_user_model().objects.get_or_create(username=username)
            if created:
                user.set_password(settings.DEMO_PASSWORD)
                user.save(update_fields=["password"])
        for client_id, secret, name, redirect_uris, algorithm in (
            (
                settings.DEMO_CLIENT_ID,
                settings.DEMO_CLIENT_SECRET,
                "Custodian (demo client)",
                oauth2_uris,
                AbstractApplication.NO_ALGORITHM,
            ),
            (
                settings.MONZO_CLIENT_ID,
                settings.MONZO_CLIENT_SECRET,
                "Custodian (Monzo-shaped client)",
                oauth2_uris,
                AbstractApplication.NO_ALGORITHM,
            ),
            (
                settings.OIDC_CLIENT_ID,
                settings.OIDC_CLIENT_SECRET,
                "Custodian (OpenID Connect client)",
                _joined(settings.OIDC_REDIRECT_URIS, extra),
                # Signed with the provider's RSA key, verifiable by anyone from the JWKS
                # (HS256 would need the client secret to check).
                AbstractApplication.RS256_ALGORITHM,
            ),
        ):
            get_application_model().objects.update_or_create(
                client_id=client_id,
                defaults={
                    "name": name,
                    "client_type": AbstractApplication.CLIENT_CONFIDENTIAL,
                    "authorization_grant_type": AbstractApplication.GRANT_AUTHORIZATION_CODE,
                    "client_secret": secret,
                    # Published demo secrets: storing them hashed would protect nothing
                    # and cost a deliberately slow hash on every token call.
                    "hash_client_secret": False,
                    "skip_authorization": False,
                    "algorithm": algorithm,
                    "redirect_uris": redirect_uris,
                },
            )


def _joined(defaults: Iterable[str], extra: Iterable[str]) -> str:
    """DOT's space-separated redirect URI list: the defaults first, no duplicates."""
    return " ".join(dict.fromkeys([*defaults, *extra]))
