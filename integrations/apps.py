from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CustodianAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Custodian's admin site (its index's sections)."""

    default = False  # named in full in INSTALLED_APPS; "integrations" means IntegrationsConfig
    default_site = "integrations.admin_site.CustodianAdminSite"


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Connected accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.signals import setting_changed

        from integrations import checks  # noqa: F401  (registers system checks)
        from integrations.security import secrets_registry

        # Also done when logging is configured (RedactingFilter); again here for a site whose
        # LOGGING lacks the filter, and on every settings change (tests, override_settings).
        secrets_registry.register_settings(settings)
        setting_changed.connect(_register_changed_setting, dispatch_uid="custodian-secrets")
        # The credential index follows any save of an association, also one made through
        # Python Social Auth's own API (the token store itself writes both at once).
        from django.db.models.signals import post_save
        from social_django.models import UserSocialAuth

        post_save.connect(_sync_state, sender=UserSocialAuth, dispatch_uid="custodian-state")
        # PSA's token API (user.social_auth.get(...).get_access_token(...)) on encrypted rows.
        from integrations.psa import token_api

        token_api.install(UserSocialAuth)
        # social-core's provider calls keep their connections (one session per thread).
        from integrations.providers import transport

        transport.install()


def _register_changed_setting(
    *, setting: str, value: object, enter: bool, **kwargs: object
) -> None:
    """Remember the secrets of a setting's new value, so tests' keys are masked too."""
    from integrations.security import secrets_registry

    if enter:
        secrets_registry.register_setting(setting, value)


def _sync_state(
    *,
    instance: object,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: object,
) -> None:
    """Keep CredentialState in step with an association saved outside the token store."""
    if raw:  # loaddata: the fixture brings its own rows
        return
    if update_fields is not None and "extra_data" not in update_fields:
        return  # extra_data in memory may be stale; it was not written
    from integrations.store.writes import sync_state

    sync_state(instance)  # type: ignore[arg-type]
