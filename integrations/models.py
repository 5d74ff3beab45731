"""Custodian's own models. Credentials themselves live in social_django's UserSocialAuth."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A site user; remembers which provider created it (empty for local accounts)."""

    signup_provider = models.CharField(
        max_length=32,
        blank=True,
        help_text="The provider this user first logged in with; empty for local accounts.",
    )
