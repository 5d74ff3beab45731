"""The admin site: Django's, with the index arranged around connected accounts.

Installed as `admin.site` by apps.CustodianAdminConfig. It lives outside integrations/admin/
because resolving `admin.site` imports it, and importing that package registers the
ModelAdmins, which needs `admin.site` (and social_django's registrations) first.

Social associations (social_django's UserSocialAuth) are what this site is about, so they sit
in the "Connected accounts" section (this app's) beside their history, not among Python
Social Auth's internals. Only the index moves them: their URLs, permissions and templates stay
social_django's (/admin/social_django/usersocialauth/), so bookmarks, group permissions and
links keep working. PSA's OpenID 1/2 tables are gated in integrations/admin/openid.py.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

# Models shown in another app's section: (app label, model name) → that section's app label.
SECTION_OF = {("social_django", "usersocialauth"): "integrations"}
# What the index calls a model when its own verbose name says little there.
ROW_NAMES = {
    ("social_django", "usersocialauth"): "Associations",
    ("social_django", "association"): "OpenID associations",
    ("social_django", "nonce"): "OpenID nonces",
}


def _key(model_dict: dict[str, Any]) -> tuple[str, str]:
    opts = model_dict["model"]._meta
    return opts.app_label, opts.model_name


class CustodianAdminSite(admin.AdminSite):
    """The default admin site (CustodianAdminConfig installs it as `admin.site`)."""

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list:
        """The index's sections, with SECTION_OF's models moved to their section. An app's
        own index page (/admin/<app_label>/) shows its section first, then any section
        holding one of its models (/admin/social_django/ lists the associations)."""
        sections = self._regrouped(super().get_app_list(request))
        if app_label is None:
            return sections
        wanted = [
            section
            for section in sections
            if section["app_label"] == app_label
            or any(_key(row)[0] == app_label for row in section["models"])
        ]
        return sorted(wanted, key=lambda section: section["app_label"] != app_label)

    def _regrouped(self, app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_label = {section["app_label"]: section for section in app_list}
        for section in list(app_list):
            for row in list(section["models"]):
                key = _key(row)
                row["name"] = ROW_NAMES.get(key, row["name"])
                target = SECTION_OF.get(key)
                if target is None or target == section["app_label"]:
                    continue
                section["models"].remove(row)
                if target not in by_label:
                    by_label[target] = self._empty_section(target)
                    app_list.append(by_label[target])
                by_label[target]["models"].append(row)
        kept = [section for section in app_list if section["models"]]
        for section in kept:
            section["models"].sort(key=lambda row: row["name"])
        return sorted(kept, key=lambda section: section["name"].lower())

    def _empty_section(self, app_label: str) -> dict[str, Any]:
        """A section for an app the admin sees none of its own models of."""
        try:
            url = reverse("admin:app_list", kwargs={"app_label": app_label}, current_app=self.name)
        except NoReverseMatch:
            url = ""
        return {
            "name": apps.get_app_config(app_label).verbose_name,
            "app_label": app_label,
            "app_url": url,
            "has_module_perms": True,
            "models": [],
        }
