"""List every enabled provider with its backend, profile, configuration, API base, how
Custodian revokes and refreshes its grants, and the provider's pages people are sent to: what
an operator checks first.

    python manage.py providers            # readable
    python manage.py providers --json     # for scripts
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from integrations.providers.overview import overview


class Command(BaseCommand):
    help = "List the enabled providers and how Custodian treats each."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON, one object each")

    def handle(self, *args, **options) -> None:
        providers = overview()
        if options["json"]:
            self.stdout.write(json.dumps([item.as_dict() for item in providers], indent=2))
            return
        if not providers:
            self.stdout.write("No OAuth 2.0 provider is enabled (see CUSTODIAN_BACKENDS).")
            return
        for item in providers:
            configured = (
                self.style.SUCCESS("yes") if item.configured else self.style.WARNING("no")
            )
            keepalive = (
                f"refreshed after {item.keepalive_seconds / 86400:g} days idle"
                if item.keepalive_seconds
                else "none"
            )
            self.stdout.write(self.style.MIGRATE_HEADING(f"{item.name}  {item.title}"))
            for label, value in (
                ("backend", item.backend),
                ("profile", item.profile),
                ("configured", configured),
                ("API base", item.api_base_url),
                ("other hosts", ", ".join(item.api_hosts) or "none"),
                ("revokes", item.revocation),
                ("refreshes", item.refresh),
                ("keep-alive", keepalive),
                ("apps page", item.connected_apps_url or "unknown"),
                ("sign-out", item.sign_out_url or "unknown"),
                ("other account", _another(item.select_account)),
            ):
                self.stdout.write(f"  {label:<13} {value}")
            self.stdout.write("")
        self.stdout.write(f"{len(providers)} providers enabled.")


def _another(params: dict[str, str]) -> str:
    """How "Connect another account" gets a different account from the provider."""
    if not params:
        return "sign out at the provider first"
    return "sends " + "&".join(f"{key}={value}" for key, value in params.items())
