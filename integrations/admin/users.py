"""The user admin: Django's, plus the signup provider and the rule that nobody changes a user
who holds rights they lack."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied

from integrations.admin.connect_policy import connectable_users, outranks
from integrations.admin.user_accounts import ConnectedAccountInline
from integrations.models import User


@admin.register(User)
class CustodianUserAdmin(UserAdmin):
    """Django's user admin, plus the provider that created the user."""

    list_display = ("username", "email", "first_name", "last_name", "is_staff", "signup_provider")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups", "signup_provider")
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Custodian", {"fields": ("signup_provider",)}))
    readonly_fields = ("signup_provider",)
    inlines = (ConnectedAccountInline,)
    # Only a superuser hands out rights: anyone else with "change user" could otherwise make
    # themselves (or a friend) superuser, or join a stronger group.
    RIGHTS_FIELDS = ("is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, *self.RIGHTS_FIELDS)

    def has_change_permission(self, request, obj=None) -> bool:
        """No changing (password included) a user who holds rights the admin lacks."""
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or outranks(obj, request.user) is None)

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or outranks(obj, request.user) is None)

    def get_inlines(self, request, obj):
        """A user's connected accounts on their page; "Add user" has none to show."""
        return self.inlines if obj is not None else ()

    def get_search_results(self, request, queryset, search_term):
        """Searches made by the connect form's user field (the admin's autocomplete, whose
        source is UserSocialAuth.user) list only users the admin may connect an account for."""
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if _connect_autocomplete(request):
            queryset = connectable_users(request.user, queryset)
        return queryset, may_have_duplicates

    def delete_queryset(self, request, queryset) -> None:
        """The bulk action checks no object: refuse the whole batch if one outranks."""
        if any(outranks(user, request.user) for user in queryset):
            raise PermissionDenied
        super().delete_queryset(request, queryset)


def _connect_autocomplete(request) -> bool:
    """Whether `request` is the admin's autocomplete for an association's user."""
    match = request.resolver_match
    return (
        match is not None
        and match.url_name == "autocomplete"
        and request.GET.get("app_label") == "social_django"
        and request.GET.get("model_name") == "usersocialauth"
        and request.GET.get("field_name") == "user"
    )
