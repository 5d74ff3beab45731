"""An association's credential history in the admin: the capped inline, and the whole
history read-only."""

from __future__ import annotations

import logging
from typing import ClassVar

from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from integrations.admin.base import ADMIN_CSS, ADMIN_JS, ReadOnlyInline
from integrations.models import CredentialEvent
from integrations.providers.registry import provider_title
from integrations.templatetags.moments import moment_html

logger = logging.getLogger(__name__)

# How many events the change page shows; the rest are one click away.
HISTORY_CAP = 50


class CappedEventFormSet(BaseInlineFormSet):
    """The newest HISTORY_CAP events only; `truncated` and `total` tell the template more exist."""

    cap = HISTORY_CAP
    truncated = False

    def get_queryset(self):
        if not hasattr(self, "_capped"):
            rows = list(super().get_queryset()[: self.cap + 1])
            self.truncated = len(rows) > self.cap
            self._capped = rows[: self.cap]
        return self._capped

    def total(self) -> int:
        self.get_queryset()
        return super().get_queryset().count() if self.truncated else len(self._capped)


class CredentialEventInline(ReadOnlyInline, admin.TabularInline):
    """The association's history, newest first, read-only."""

    model = CredentialEvent
    fk_name = "association"
    formset = CappedEventFormSet
    template = "admin/custodian/credentialevent_inline.html"
    fields = ("when", "kind", "actor", "detail")
    readonly_fields = fields
    verbose_name = "history event"
    verbose_name_plural = "history (newest first)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor").order_by("-created", "-pk")

    @admin.display(description="when")
    def when(self, obj: CredentialEvent) -> str:
        return moment_html(obj.created)


@admin.register(CredentialEvent)
class CredentialEventAdmin(admin.ModelAdmin):
    """Every credential event, including those of disconnected associations. Read-only."""

    list_display = (
        "when", "kind", "account", "user", "actor", "detail", "association_link"
    )
    list_filter = ("kind", "provider")
    list_select_related = ("user", "actor")
    search_fields = ("uid", "user__username", "user__email", "detail")
    search_help_text = "Search by account uid, username, e-mail address or detail."
    date_hierarchy = "created"
    list_per_page = 100

    class Media:
        css: ClassVar = ADMIN_CSS
        js: ClassVar = ADMIN_JS

    @admin.display(description="when", ordering="created")
    def when(self, obj: CredentialEvent) -> str:
        return moment_html(obj.created, compact=True)

    @admin.display(description="account", ordering="uid")
    def account(self, obj: CredentialEvent) -> str:
        """The account's uid, its provider below (filtered on the right, not a column)."""
        return format_html(
            '{}<span class="custodian-provider">{}</span>', obj.uid, provider_title(obj.provider)
        )

    @admin.display(description="association")
    def association_link(self, obj: CredentialEvent) -> str:
        if obj.association_id is None:
            return "— (disconnected)"
        url = reverse("admin:social_django_usersocialauth_change", args=[obj.association_id])
        return format_html('<a href="{}">#{}</a>', url, obj.association_id)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
