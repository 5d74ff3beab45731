"""Protective response headers: the Content-Security-Policy's form targets, and no-store.

Content-Security-Policy
-----------------------
The policy itself is in settings (CONTENT_SECURITY_POLICY): only the site's own scripts,
styles and images. One directive cannot be static: `form-action`. The login, connect and
reconnect buttons are forms POSTing to /login/<backend>/, which answers with a redirect to
the provider's authorization page, and browsers check `form-action` on the redirects that
follow a form submission too. With `form-action 'self'` alone Chromium would stop every
login at that redirect; leaving `form-action` out would let injected markup post forms
anywhere. So the directive is 'self' plus the origin of each configured provider's
authorization endpoint, read from the backends when the response is made: a provider added
or re-pointed in the settings (tests point them at a loopback server) is covered without
anything to keep in step. CUSTODIAN_CSP_FORM_ACTION adds origins for a provider whose
authorization page redirects on to another origin.

Cache-Control: no-store
-----------------------
Pages showing account data (connected accounts, the Try it answer, the disconnect question,
the password form, the admin) must not stay in a shared cache or the browser's history cache
for the next person at the machine. Every page rendered for a logged-in user names the user
in its header bar, so the rule is the user, not a list of views: a new page is covered
without anyone remembering a decorator. Added to that: everything under the admin (its login
page included; Django's admin views send the same header, this keeps custom ones honest), and
social-auth's own URLs (/login/, /complete/, /disconnect/), whose answers belong to one login
attempt and whose callback URLs carry authorization codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from csp.constants import SELF
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers
from social_core.exceptions import SocialAuthBaseException
from social_django.utils import load_backend, load_strategy

from integrations.providers.registry import is_configured, provider_classes


def origin_of(url: str) -> str:
    """Return `scheme://host[:port]` of an absolute http(s) URL, or "" for anything else."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower().rsplit('@', 1)[-1]}"


# An OpenID provider's authorization endpoint comes from its discovery document. When that
# cannot be fetched, pages do not wait for it again on every response: a minute's pause.
_UNREACHABLE: dict[str, float] = {}
RETRY_DISCOVERY_AFTER = 60.0


def provider_form_origins() -> list[str]:
    """Origins a login form may end up at: each configured provider's authorization endpoint
    (a provider without a client id offers no button), plus CUSTODIAN_CSP_FORM_ACTION."""
    origins = {origin_of(url) for url in getattr(settings, "CUSTODIAN_CSP_FORM_ACTION", [])}
    strategy = None
    now = time.monotonic()
    for name in provider_classes():
        if _UNREACHABLE.get(name, 0.0) > now:
            continue
        strategy = strategy or load_strategy()
        backend = load_backend(strategy, name, redirect_uri=None)
        if not is_configured(backend):
            continue
        try:
            url = backend.authorization_url()
        except ImproperlyConfigured:
            continue  # a broken declaration fails at its own login, not on every page
        except SocialAuthBaseException:
            # An OpenID provider whose discovery document cannot be fetched now.
            _UNREACHABLE[name] = now + RETRY_DISCOVERY_AFTER
            continue
        origins.add(origin_of(url))
    origins.discard("")
    return sorted(origins)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the providers' origins added to `form-action`."""

    def get_policy_parts(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        report_only: bool = False,
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        if report_only:
            return parts
        update: dict[str, Any] = dict(parts.update or {})
        declared = update.get("form-action") or []
        declared = [declared] if isinstance(declared, str) else list(declared)
        # 'self' too, in case the configured policy has no form-action: adding only the
        # providers would stop the site's own forms.
        update["form-action"] = [SELF, *declared, *provider_form_origins()]
        parts.update = update
        return parts


def shows_account_data(request: HttpRequest) -> bool:
    """Whether the answer to `request` may hold account data (see the module docstring)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return True
    match = getattr(request, "resolver_match", None)
    if match is not None and "social" in match.namespaces:
        return True
    try:
        admin_root = reverse("admin:index")
    except NoReverseMatch:
        return False
    return request.path.startswith(admin_root)


class NoStoreMiddleware:
    """Send `Cache-Control: no-store` (Django's never_cache headers) with account data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        # Asked after the view: a login in this request counts, a logout does not (its
        # redirect carries nothing).
        if shows_account_data(request):
            add_never_cache_headers(response)
        return response
