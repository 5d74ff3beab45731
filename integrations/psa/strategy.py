"""Custodian's Python Social Auth strategy (``SOCIAL_AUTH_STRATEGY``).

Two things every backend gets from it, stock or ours, with no change to the backend:

- **A login that fails changes nothing.** The pipeline creates the user, links the account and
  stores the tokens in several steps; a later step (or the provider, asked from a step) can
  still fail. The whole pipeline runs in one transaction, so a failure rolls back the user,
  the association, its credential state and its history together.
- **Token calls get their own timeout.** A rotating provider that answers a refresh after
  the client gave up has already spent the old refresh token, and the new one is lost: the
  grant dies. social-core sends every provider call with ``REQUESTS_TIMEOUT``; unless a site
  sets ``SOCIAL_AUTH_REQUESTS_TIMEOUT`` itself, that is ``CUSTODIAN_REFRESH_TIMEOUT`` (60 s
  by default), not the short timeout of API calls.

It also registers the login's tokens for redaction by value
(integrations/security/secrets_registry.py) as soon as the token response arrives, and vets
every paused pipeline before it resumes: only the browser session that paused it, once, in
time (integrations/psa/account_choice.py). It also lets a
person ask for **another account**: a begin request with ``another_account=1`` gets the
profile's `select_account` parameters (Google's ``prompt=select_account``) on top of the
authorization parameters. Only that flag comes from the request; the parameters are the
profile's, so nobody can slip other parameters into the authorization request. The flag is
kept in the session (``FIELDS_STORED_IN_SESSION``) so the pipeline can tell the person when
the provider gave back an account that was already connected.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from social_core.utils import setting_name
from social_django.strategy import DjangoStrategy

from backends.profiles import profile_for
from integrations.psa import account_choice
from integrations.security import secrets_registry

# The begin request's flag asking the provider for another account, and its one value.
ANOTHER_ACCOUNT = "another_account"
ASKED = "1"


def asked_for_another_account(strategy: Any) -> bool:
    """Whether the current request (a begin) carries another_account=1."""
    if getattr(strategy, "request", None) is None:
        return False
    return strategy.request_data().get(ANOTHER_ACCOUNT) == ASKED


# Which of a setting's names (SOCIAL_AUTH_<BACKEND>_X, SOCIAL_AUTH_X, X) the site defines, by
# (X, backend name); None when none is. PSA tries them in turn on every lookup, each miss an
# exception: a token call looks up five settings, which cost a tenth of its CPU. The value is
# still read from the settings on every lookup; only which name holds it is remembered, and
# forgotten whenever a setting changes (tests).
_defined: dict[tuple[str, str | None], str | None] = {}


def _forget_defined(**kwargs: Any) -> None:
    _defined.clear()


setting_changed.connect(_forget_defined, dispatch_uid="custodian-strategy-settings")


class CustodianStrategy(DjangoStrategy):
    """Django's strategy, with the pipeline in one transaction and the token-call timeout."""

    def authenticate(self, backend: Any, **kwargs: Any) -> Any:
        # The login's token response, before any pipeline step can fail with it in a frame.
        secrets_registry.register_token_response(kwargs.get("response"))
        with transaction.atomic():
            return super().authenticate(backend, **kwargs)

    def partial_load(self, token: str) -> Any:
        """PSA's loading of a paused pipeline, vetted by account_choice.claim (the only
        partial step of the site's pipeline)."""
        return account_choice.claim(self, token, super().partial_load(token))

    def token_response_received(self, response: Any) -> None:
        """Called by Custodian's backends with every token response (login and refresh)."""
        secrets_registry.register_token_response(response)

    def setting(self, name: str, default: Any = None, backend: Any = None) -> Any:
        """PSA's setting lookup, with the provider profile's authorization parameters as the
        default of AUTH_EXTRA_ARGUMENTS (Google's access_type=offline: without it there is no
        refresh token) and its scopes as the default of SCOPE (offline_access); a site that
        sets SOCIAL_AUTH_<NAME>_AUTH_EXTRA_ARGUMENTS or _SCOPE keeps its own. The another-
        account flag is added to FIELDS_STORED_IN_SESSION.
        """
        value = self._psa_setting(name, default, backend)
        if name == "FIELDS_STORED_IN_SESSION":
            stored = list(value or [])
            return stored if ANOTHER_ACCOUNT in stored else [*stored, ANOTHER_ACCOUNT]
        if backend is None:
            return value
        if name == "AUTH_EXTRA_ARGUMENTS":
            return self._authorization_params(backend, value, default)
        if value != default:
            return value
        if name == "SCOPE":
            scopes = profile_for(backend.name).scopes
            if scopes:
                return [*(value or []), *scopes]
        return value

    def _psa_setting(self, name: str, default: Any, backend: Any) -> Any:
        """PSA's own lookup (BaseStrategy.setting), remembering which name is defined."""
        key = (name, backend.name if backend else None)
        if key not in _defined:
            names = [setting_name(name), name]
            if backend:
                names.insert(0, setting_name(backend.name, name))
            _defined[key] = next((each for each in names if self._defines(each)), None)
        found = _defined[key]
        if found is None:
            return default
        try:
            return self.get_setting(found)
        except (AttributeError, KeyError):  # gone without a signal: look again, as PSA does
            _defined.pop(key, None)
            return super().setting(name, default, backend)

    def _defines(self, name: str) -> bool:
        try:
            self.get_setting(name)
        except (AttributeError, KeyError):
            return False
        return True

    def _authorization_params(self, backend: Any, value: Any, default: Any) -> dict[str, str]:
        """The site's own AUTH_EXTRA_ARGUMENTS, else the profile's `auth_params`; plus the
        profile's `select_account` when the person asked for another account."""
        profile = profile_for(backend.name)
        own = value != default
        params = dict(value or {}) if own else {**profile.auth_params, **(value or {})}
        if asked_for_another_account(self):
            params.update(profile.select_account)
        return params

    def get_setting(self, name: str) -> Any:
        if name == "SOCIAL_AUTH_REQUESTS_TIMEOUT" and not hasattr(settings, name):
            return settings.CUSTODIAN_REFRESH_TIMEOUT
        return super().get_setting(name)
