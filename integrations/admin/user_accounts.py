"""A user's connected accounts on their admin page: what is linked to them, in what health,
until when, each a link to its association. Read-only: associations are added with "Connect
an account" and removed with "Revoke and disconnect", never by editing a user."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from social_django.models import UserSocialAuth

from integrations.admin import health
from integrations.admin.base import ADMIN_CSS, ADMIN_JS, ReadOnlyInline
from integrations.providers.registry import provider_title
from integrations.templatetags.moments import moment_html

if TYPE_CHECKING:
    _Inline = admin.TabularInline[UserSocialAuth, UserSocialAuth]
else:  # generic only in the type stubs
    _Inline = admin.TabularInline


class ConnectedAccountInline(ReadOnlyInline, _Inline):
    """The user's associations, those in trouble first. Shown to whoever may view
    associations; nothing here is a form field, and no secret is read."""

    model = UserSocialAuth
    fk_name = "user"
    fields = ("association", "provider_name", "account_uid", "status", "expires", "connected")
    readonly_fields = fields
    verbose_name = "connected account"
    verbose_name_plural = "connected accounts"

    class Media:
        css: ClassVar = ADMIN_CSS
        js: ClassVar = ADMIN_JS

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("credential_state")
        return health.with_health(queryset).order_by("-health_rank", "provider", "uid")

    @admin.display(description="association")
    def association(self, obj: UserSocialAuth) -> str:
        url = reverse("admin:social_django_usersocialauth_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)

    @admin.display(description="provider")
    def provider_name(self, obj: UserSocialAuth) -> str:
        return provider_title(obj.provider)

    @admin.display(description="account uid")
    def account_uid(self, obj: UserSocialAuth) -> str:
        return obj.uid

    @admin.display(description="status")
    def status(self, obj: UserSocialAuth) -> str:
        return health.badge(obj)

    @admin.display(description="expires")
    def expires(self, obj: UserSocialAuth) -> str:
        return health.expiry_cell(obj)

    @admin.display(description="connected")
    def connected(self, obj: UserSocialAuth) -> str:
        return moment_html(obj.created, compact=True)
