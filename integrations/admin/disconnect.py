"""Revoke and disconnect from the admin: the action, the change page's delete, the
confirmation page; the work itself is integrations.psa.disconnect's."""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from social_django.models import UserSocialAuth

from integrations.admin.base import AssociationAdminBase
from integrations.admin.masking import label_of
from integrations.providers.registry import provider_title
from integrations.psa.disconnect import disconnect


class RevokeAndDisconnectMixin(AssociationAdminBase):
    """The association admin's revoke-and-disconnect action and delete views."""

    # -- revoke and disconnect --

    @admin.action(description="Revoke and disconnect", permissions=["delete"])
    def revoke_and_disconnect(self, request: HttpRequest, queryset):
        associations = list(queryset)
        if request.POST.get("post") == "yes":
            for association in associations:
                self._disconnect_one(request, association)
            return None
        return self._revoke_confirmation(
            request,
            associations,
            form_action=reverse(self.url_name("changelist")),
            cancel_url=reverse(self.url_name("changelist")),
            via_action=True,
        )

    def delete_view(self, request, object_id, extra_context=None):
        """The change page's "Delete" is "Revoke and disconnect" too, with the same confirmation."""
        association = self.get_object(request, unquote(object_id))
        if association is None:
            return self.not_found(request, object_id)
        if not self.has_delete_permission(request, association):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("post") == "yes":
            self._disconnect_one(request, association)
            return HttpResponseRedirect(reverse(self.url_name("changelist")))
        return self._revoke_confirmation(
            request,
            [association],
            form_action=request.path,
            cancel_url=reverse(self.url_name("change"), args=[association.pk]),
            via_action=False,
        )

    def delete_model(self, request, obj):
        self._disconnect_one(request, obj, log=False)

    def delete_queryset(self, request, queryset):
        for association in queryset:
            self._disconnect_one(request, association, log=False)

    def _revoke_confirmation(
        self,
        request: HttpRequest,
        associations: list[UserSocialAuth],
        *,
        form_action: str,
        cancel_url: str,
        via_action: bool,
    ) -> TemplateResponse:
        users = {association.user_id for association in associations}
        selected = {association.pk for association in associations}
        others = Counter(
            UserSocialAuth.objects.filter(user_id__in=users)
            .exclude(pk__in=selected)
            .values_list("user_id", flat=True)
        )
        rows = []
        for association in associations:
            user = association.user
            stranded = not user.has_usable_password() and not others[user.pk]
            rows.append(
                {
                    "association": association,
                    "label": label_of(association),
                    "warning": f"{user} has no password and no other connected account: their "
                    f"next login with {provider_title(association.provider)} creates a new, "
                    "empty user."
                    if stranded
                    else "",
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke and disconnect?",
            "subtitle": None,
            "opts": self.opts,
            "rows": rows,
            "form_action": form_action,
            "cancel_url": cancel_url,
            "via_action": via_action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/custodian/revoke_confirmation.html", context)

    def _disconnect_one(
        self, request: HttpRequest, association: UserSocialAuth, *, log: bool = True
    ) -> None:
        """Revoke at the provider when it can, record the history with the admin as actor,
        and delete. A failed revocation never keeps the association (it is reported)."""
        label = label_of(association)
        title = provider_title(association.provider)
        with transaction.atomic():  # no admin log entry for a deletion that did not happen
            if log:
                self.log_deletions(request, UserSocialAuth.objects.filter(pk=association.pk))
            outcome = disconnect(
                association, actor=request.user, request=request, detail="from the admin"
            )
        if outcome.revoked is True:
            messages.success(request, f"{label}: revoked at {title} and disconnected.")
        elif outcome.revoked is False:
            messages.warning(
                request,
                f"{label}: disconnected, but revocation at {title} failed ({outcome.reason}); "
                "the grant may still be valid there.",
            )
        else:
            messages.success(request, f"{label}: disconnected ({outcome.reason}).")
