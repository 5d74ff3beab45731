"""Idempotent seeding of the demo users and clients, run at every start."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from oauth2_provider.models import AbstractApplication, get_application_model


def seed(extra_redirect_uris: Iterable[str] = ()) -> None:
    """Create the demo users and (re)register both clients.

    The default redirect URIs are always registered and extra ones are added, so a
    caller passing its own URI never loses the defaults the site relies on.
    Passwords are only set on creation: hashing is deliberately slow.
    """
    redirect_uris = " ".join(dict.fromkeys([*settings.DEFAULT_REDIRECT_URIS, *extra_redirect_uris]))
    with transaction.atomic():
        for username in settings.DEMO_USERS:
            user, created = get_user_model().objects.get_or_create(username=username)
            if created:
                user.set_password(settings.DEMO_PASSWORD)
                user.save(update_fields=["password"])
        for client_id, secret, name in (
            (settings.DEMO_CLIENT_ID, settings.DEMO_CLIENT_SECRET, "Custodian (demo client)"),
            (
                settings.MONZO_CLIENT_ID,
                settings.MONZO_CLIENT_SECRET,
                "Custodian (Monzo-shaped client)",
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
                    "algorithm": AbstractApplication.NO_ALGORITHM,
                    "redirect_uris": redirect_uris,
                },
            )
