"""What the provider keeps beyond django-oauth-toolkit's own tables."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Approval(models.Model):
    """A user's in-app approval of a client (Monzo's Strong Customer Authentication).

    Kept per (user, application) rather than per token, so it survives refreshes.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE
    )
    approved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "application"], name="one_approval_per_client")
        ]
