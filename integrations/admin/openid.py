"""Python Social Auth's OpenID 1/2 tables (Association, Nonce) in the admin only when used.

social_django registers them for every site, but only an OpenID 1/2 backend writes them; on a
site of OAuth 2.0 and OpenID Connect providers they are always empty, and PSA's "Association"
reads as if it were a social association. So while no OpenID 1/2 backend is enabled they are
neither on the index nor reachable by URL.
"""

from __future__ import annotations

from django.contrib import admin
from social_django.admin import AssociationOption, NonceOption
from social_django.models import Association, Nonce

from integrations.providers.registry import uses_openid_1_2


class OpenIdOnly(admin.ModelAdmin):
    """No permission at all on the model unless an OpenID 1/2 backend is enabled."""

    def has_module_permission(self, request) -> bool:
        return uses_openid_1_2() and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return uses_openid_1_2() and super().has_view_permission(request, obj)

    def has_add_permission(self, request) -> bool:
        return uses_openid_1_2() and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return uses_openid_1_2() and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return uses_openid_1_2() and super().has_delete_permission(request, obj)


class OpenIdAssociationAdmin(OpenIdOnly, AssociationOption):
    """PSA's OpenID association store, as social_django shows it."""


class OpenIdNonceAdmin(OpenIdOnly, NonceOption):
    """PSA's OpenID nonce store, as social_django shows it."""


admin.site.unregister(Association)
admin.site.register(Association, OpenIdAssociationAdmin)
admin.site.unregister(Nonce)
admin.site.register(Nonce, OpenIdNonceAdmin)
