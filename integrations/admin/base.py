"""What the association admin's parts share: its URL names, the "no such row" answer, and
the read-only inlines (a user's accounts, an association's history)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.forms import Script
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from social_django.models import UserSocialAuth

from integrations.templatetags.moments import SCRIPT as MOMENTS_SCRIPT

# Every admin page showing Custodian's data: its stylesheet, and the script that puts times in
# the reader's time zone (deferred, like the pages'; the CSP allows no inline script).
ADMIN_CSS = {"all": ("css/custodian-admin.css",)}
ADMIN_JS = (Script(MOMENTS_SCRIPT, defer=True),)

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[UserSocialAuth]
else:  # ModelAdmin is generic only in the type stubs
    _ModelAdmin = admin.ModelAdmin


class AssociationAdminBase(_ModelAdmin):
    """Base of the association admin and of the mixins that add its views. It replaces
    social_django's admin of the same model, of which it keeps the user as a raw id."""

    raw_id_fields = ("user",)

    def url_name(self, view: str, *, namespaced: bool = True) -> str:
        """The URL name of one of this admin's views (`change`, `refresh`, ...)."""
        name = f"{self.opts.app_label}_{self.opts.model_name}_{view}"
        return f"{self.admin_site.name}:{name}" if namespaced else name

    def not_found(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        """Back to the list with a message, as Django's own views do for a missing row."""
        messages.warning(
            request,
            f"{str(self.opts.verbose_name).capitalize()} with ID “{object_id}” doesn't exist. "
            "Perhaps it was deleted?",
        )
        return HttpResponseRedirect(reverse(self.url_name("changelist")))


class ReadOnlyInline:
    """An inline that lists rows and changes nothing: no empty forms, no add, change or
    delete (its fields are display methods and read-only fields)."""

    extra = 0
    max_num: int | None = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
