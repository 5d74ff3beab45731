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


class CredentialState(models.Model):
    """Queryable copy of an association's token expiry and status, kept in step with
    extra_data by the token store, so "which tokens are due" uses an index, not a JSON scan."""

    association = models.OneToOneField(
        "social_django.UserSocialAuth",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="credential_state",
    )
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=32, default="active")
    last_refreshed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = (models.Index(fields=["status", "expires_at"], name="credstate_status_expiry"),)

    def __str__(self) -> str:
        return f"{self.association_id}: {self.status}, expires {self.expires_at}"


class CredentialEvent(models.Model):
    """Append-only history of an association: connected, refreshed, failures, in-app approval
    (awaited, given), revocation, and adoption (a row stock Python Social Auth wrote,
    rewritten in Custodian's shape).

    Provider, uid and user are copied so the history outlives a disconnected association.
    `detail` never holds a secret.
    """

    class Kind(models.TextChoices):
        CONNECTED = "connected"
        REFRESHED = "refreshed"
        REFRESH_FAILED = "refresh_failed"
        REAUTH_REQUIRED = "reauth_required"
        AWAITING_APPROVAL = "awaiting_approval"
        APPROVED = "approved"
        REVOKED = "revoked"
        DISCONNECTED = "disconnected"
        ADOPTED = "adopted"

    association = models.ForeignKey(
        "social_django.UserSocialAuth",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="credential_events",
    )
    user = models.ForeignKey(
        "integrations.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    provider = models.CharField(max_length=32)
    uid = models.CharField(max_length=255)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        "integrations.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("-created", "-pk")
        indexes = (
            models.Index(fields=["association", "-created"], name="credevent_assoc_created"),
        )

    def __str__(self) -> str:
        return f"{self.provider}:{self.uid} {self.kind} at {self.created:%Y-%m-%d %H:%M:%S}"
