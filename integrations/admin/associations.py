"""The admin of social associations: token health at a glance, history, actions, connect.

Replaces social_django's UserSocialAuth admin. Nothing here ever renders a token: secrets are
shown as fingerprints (last 6 hex digits of their SHA-256), and the raw extra_data is never a
form field, so its ciphertext never reaches a page either.
"""

from __future__ import annotations

import json
from typing import ClassVar

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from social_core.exceptions import SocialAuthBaseException
from social_django.models import UserSocialAuth

from integrations.admin import health
from integrations.admin.base import ADMIN_CSS, ADMIN_JS, AssociationAdminBase
from integrations.admin.connect import ConnectFlowMixin
from integrations.admin.disconnect import RevokeAndDisconnectMixin
from integrations.admin.history import CredentialEventInline
from integrations.admin.masking import label_of, redacted, state_of, token_fingerprint
from integrations.exceptions import ProviderNotOffered, ReauthRequired, RefreshFailed
from integrations.refreshing.single_flight import refresh
from integrations.store.credentials import fingerprint
from integrations.store.times import to_datetime
from integrations.templatetags.moments import moment_html


class HealthFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(item.key, item.label) for item in health.HEALTHS]

    def queryset(self, request, queryset):
        item = health.BY_KEY.get(self.value() or "")
        if item is None:
            return queryset
        return queryset.filter(health_rank=item.rank)


admin.site.unregister(UserSocialAuth)


@admin.register(UserSocialAuth)
class AssociationAdmin(ConnectFlowMixin, RevokeAndDisconnectMixin, AssociationAdminBase):
    """Social associations: health, history, refresh, revoke and disconnect, connect."""

    list_display = (
        "user",
        "provider",
        "account_uid",
        "status_badge",
        "expires_in",
        "last_refreshed",
        "created_at",
    )
    list_display_links = ("user", "account_uid")
    list_filter = ("provider", HealthFilter)
    list_select_related = ("user", "credential_state")
    list_per_page = 50
    search_fields = ("user__username", "user__email", "uid")
    search_help_text = "Search by username, e-mail address or account uid."
    actions = ("refresh_now", "revoke_and_disconnect")
    inlines = (CredentialEventInline,)
    change_form_template = "admin/custodian/usersocialauth_change_form.html"
    change_list_template = "admin/custodian/usersocialauth_change_list.html"
    object_history_template = "admin/custodian/usersocialauth_object_history.html"
    fieldsets = (
        (None, {"fields": ("user", "provider", "uid", "status_badge")}),
        (
            "Token",
            {
                "fields": (
                    "expires",
                    "refreshed_when",
                    "access_token_fingerprint",
                    "refresh_token_fingerprint",
                    "token_scope",
                )
            },
        ),
        ("Stored extra_data (secrets redacted)", {"fields": ("redacted_extra_data",)}),
        ("Dates", {"fields": ("created_when", "modified_when")}),
    )
    readonly_fields = (
        "user",
        "provider",
        "uid",
        "status_badge",
        "expires",
        "refreshed_when",
        "access_token_fingerprint",
        "refresh_token_fingerprint",
        "token_scope",
        "redacted_extra_data",
        "created_when",
        "modified_when",
    )

    class Media:
        css: ClassVar = ADMIN_CSS
        js: ClassVar = ADMIN_JS

    # -- queryset, search, ordering --

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user", "credential_state")
        return health.with_health(queryset)

    def get_search_fields(self, request=None):
        return self.search_fields

    def get_ordering(self, request):
        # Trouble first, then what expires soonest.
        return [F("health_rank").desc(), F("credential_state__expires_at").asc(nulls_last=True)]

    # -- columns and fields --

    @admin.display(description="account uid", ordering="uid")
    def account_uid(self, obj: UserSocialAuth) -> str:
        return obj.uid

    @admin.display(description="status", ordering="health_rank")
    def status_badge(self, obj: UserSocialAuth) -> str:
        return health.badge(obj)

    @admin.display(
        description="expires in",
        ordering=F("credential_state__expires_at").asc(nulls_last=True),
    )
    def expires_in(self, obj: UserSocialAuth) -> str:
        return health.expiry_cell(obj)

    @admin.display(
        description="last refreshed",
        ordering=F("credential_state__last_refreshed_at").asc(nulls_last=True),
    )
    def last_refreshed(self, obj: UserSocialAuth) -> str:
        state = state_of(obj)
        moment = state.last_refreshed_at if state is not None else None
        return moment_html(moment, compact=True, empty="never")

    @admin.display(description="created", ordering="created")
    def created_at(self, obj: UserSocialAuth) -> str:
        return moment_html(obj.created, compact=True)

    @admin.display(description="expires")
    def expires(self, obj: UserSocialAuth) -> str:
        return health.expiry_cell(obj, compact=False, missing="— (no credential state recorded)")

    @admin.display(description="last refreshed")
    def refreshed_when(self, obj: UserSocialAuth) -> str:
        state = state_of(obj)
        return moment_html(state.last_refreshed_at if state else None, empty="never")

    @admin.display(description="created")
    def created_when(self, obj: UserSocialAuth) -> str:
        return moment_html(obj.created)

    @admin.display(description="modified")
    def modified_when(self, obj: UserSocialAuth) -> str:
        return moment_html(obj.modified)

    @admin.display(description="access token")
    def access_token_fingerprint(self, obj: UserSocialAuth) -> str:
        return format_html(
            '<code class="custodian-fp">{}</code>', token_fingerprint(obj, "access_token")
        )

    @admin.display(description="refresh token")
    def refresh_token_fingerprint(self, obj: UserSocialAuth) -> str:
        return format_html(
            '<code class="custodian-fp">{}</code>', token_fingerprint(obj, "refresh_token")
        )

    @admin.display(description="scope")
    def token_scope(self, obj: UserSocialAuth) -> str:
        return (obj.extra_data or {}).get("scope") or "—"

    @admin.display(description="extra_data")
    def redacted_extra_data(self, obj: UserSocialAuth) -> str:
        text = json.dumps(
            redacted(obj.extra_data or {}), indent=2, sort_keys=True, ensure_ascii=False
        )
        return format_html('<pre class="custodian-json">{}</pre>', text)

    # -- change page: read-only, never writes extra_data --

    # What the pages call a UserSocialAuth (social_django names it "user social auth"); the
    # index says "Associations" too (integrations/admin_site.py).
    NAME = "association"

    def changelist_view(self, request, extra_context=None):
        verb = "change" if self.has_change_permission(request) else "view"
        title = f"Select {self.NAME} to {verb}"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        verb = "Change" if self.has_change_permission(request) else "View"
        extra_context = {
            "title": f"{verb} {self.NAME}",
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "refresh_url": reverse(self.url_name("refresh"), args=[object_id])
            if self.has_change_permission(request)
            else "",
            "revoke_url": reverse(self.url_name("delete"), args=[object_id])
            if self.has_delete_permission(request)
            else "",
            "events_url": reverse("admin:integrations_credentialevent_changelist")
            + f"?association__id__exact={object_id}",
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        # Every field is read-only: writing the whole row would put back the extra_data read
        # when the page was opened, undoing any token rotation since. Write changed fields only.
        obj.save(update_fields=list(form.changed_data))

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting must go through "Revoke and disconnect" (revocation and history).
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self):
        urls = [
            path(
                "connect/complete/<str:backend>/",
                self.admin_site.admin_view(self.connect_complete_view),
                name=self.url_name("connect_complete", namespaced=False),
            ),
            path(
                "<path:object_id>/refresh/",
                self.admin_site.admin_view(self.refresh_view),
                name=self.url_name("refresh", namespaced=False),
            ),
        ]
        return urls + super().get_urls()

    # -- refresh --

    @admin.action(description="Refresh now", permissions=["change"])
    def refresh_now(self, request: HttpRequest, queryset) -> None:
        for association in queryset:
            self._refresh_one(request, association)

    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: refresh one association from its change page, then go back there."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        association = self.get_object(request, unquote(object_id))
        if association is None:
            return self.not_found(request, object_id)
        if not self.has_change_permission(request, association):
            raise PermissionDenied
        self._refresh_one(request, association)
        return HttpResponseRedirect(reverse(self.url_name("change"), args=[association.pk]))

    def _refresh_one(self, request: HttpRequest, association: UserSocialAuth) -> None:
        label = label_of(association)
        try:
            credentials = refresh(association, force=True, actor=request.user)
        except ProviderNotOffered:
            outcome = "not refreshed (the provider is no longer offered)"
            messages.warning(request, f"{label}: {outcome}; it can only be disconnected.")
        except ReauthRequired as error:
            outcome = f"reauth required ({error.reason or 'the provider rejected the grant'})"
            messages.warning(request, f"{label}: {outcome}; the user must reconnect.")
        except RefreshFailed as error:
            outcome = f"refresh failed ({error.cause})"
            messages.error(
                request,
                f"{label}: {outcome}; the stored credentials are unchanged. Try again later.",
            )
        except SocialAuthBaseException as error:
            outcome = f"refresh failed ({error.code})"
            messages.error(request, f"{label}: {outcome}.")
        else:
            expires_at = to_datetime(credentials.expires_at)
            outcome = f"refreshed, new access token fp {fingerprint(credentials.access_token)}"
            expiry = f"expires {health.expires_phrase(expires_at)}" if expires_at else "no expiry"
            messages.success(request, f"{label}: {outcome}, {expiry}.")
        self.log_change(request, association, f"Refresh now: {outcome}.")
