"""Provider profiles: what Custodian adds to a Python Social Auth backend, by backend name.

A backend (social-core's, or one of ours) knows the handshake: where to send the user, how to
exchange the code, who the user is. What it does not know is what Custodian needs next: where
the provider's API lives and which hosts may receive the token, how to revoke a grant, whether
the provider's app must also approve access, a friendly name for the account, which error
codes mean "only a new login helps", how often an idle grant must be used to stay alive,
and what a person needs at the provider: its page of connected apps, its sign-out page, the
parameters that let them pick another account. That is a `Profile`, looked up here by the
backend's `name`, never by its class: any backend works, with or without one.

A backend with no profile gets safe defaults: no approval step; revocation through
social-core's `revoke_token` when the backend has a REVOKE_TOKEN_URL, else none; no API base
unless the site sets one (`SOCIAL_AUTH_<NAME>_API_BASE_URL`), in which case `get_session` only
accepts absolute URLs on the hosts the site lists (`SOCIAL_AUTH_<NAME>_API_HOSTS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from backends.profiles.revocation import Revocation, social_core_revoke

if TYPE_CHECKING:
    from backends.credentials import Credentials

__all__ = ["Profile", "Revocation", "profile_for", "register"]

# (backend, extra_data) -> API base URL: for bases that depend on the association
# (Salesforce's instance_url) or on the backend's settings (an OpenID provider's issuer).
BaseURLRule = Callable[[Any, Mapping[str, Any]], str]
RevokeRule = Callable[[Any, "Credentials", str], "bool | None"]


@dataclass(frozen=True)
class Profile:
    """What Custodian knows about one provider beyond its backend's handshake."""

    name: str
    title: str = ""
    # Where relative get_session URLs resolve. A string may name fields of the association's
    # stored data ("{instance_url}/services/data/v60.0"); a callable gets (backend, data).
    api_base_url: str | BaseURLRule = ""
    # Other origins ("https://content.dropboxapi.com") the token may be sent to.
    api_hosts: tuple[str, ...] = ()
    # A Revocation, a callable (backend, credentials, uid) -> bool | None, or None (the
    # provider offers no revocation). Default: social-core's revoke_token, if any.
    revocation: Revocation | RevokeRule | None = social_core_revoke
    # Refresh an expired access token before revoking (single flight): for providers that
    # revoke with the access token, which an idle association's has usually outlived.
    refresh_before_revoke: bool = False
    # (backend, access_token) -> True (approved), False (waiting), None (cannot tell now).
    approval: Callable[[Any, str], bool | None] | None = None
    # Error codes (prefixes) of an API answer (HTTP 403, the body's `code` or `error`) that
    # mean the approval above is needed (again): the association goes back to waiting.
    approval_codes: tuple[str, ...] = ()
    # (backend, access_token) -> a friendly name for the account, "" when none.
    account_name: Callable[[Any, str], str] | None = None
    # Provider error codes (prefixes) that mean the grant is gone: reconnect.
    reauth_codes: tuple[str, ...] = ()
    # Seconds after which an idle grant is refreshed anyway, so that it stays alive.
    keepalive: int | None = None
    # Authorization parameters Custodian needs (a refresh token at all: Google's
    # access_type=offline); the site's own SOCIAL_AUTH_<NAME>_AUTH_EXTRA_ARGUMENTS win.
    auth_params: Mapping[str, str] = field(default_factory=dict)
    # Scopes Custodian needs besides the backend's defaults (OpenID Connect's offline_access:
    # without it Microsoft, Okta and Auth0 issue no refresh token); the site's own
    # SOCIAL_AUTH_<NAME>_SCOPE wins.
    scopes: tuple[str, ...] = ()
    # (JSON body of a failed token call) -> the provider's error code, for providers that do
    # not put it in OAuth's `error` field (Zoom's `reason`, Twitch's `message`, Strava's
    # `errors`); `reauth_codes` are matched against it.
    error_code: Callable[[Any], str | None] | None = None
    # (backend) -> headers every API request needs besides the token (Twitch's Client-Id).
    headers: Callable[[Any], Mapping[str, str]] | None = None
    # The provider's page where a person reviews the apps they gave access to and removes
    # one ("" when there is none on the web: Monzo's list is in its app). People are sent
    # there when a revocation failed or the provider offers none.
    connected_apps_url: str = ""
    # Authorization parameters that make the provider ask which account to use (Google's
    # prompt=select_account), sent only when a person asks to connect another account;
    # empty when the provider has no such parameter.
    select_account: Mapping[str, str] = field(default_factory=dict)
    # Where a person signs out at the provider: without `select_account`, the provider
    # links whichever account is signed in there, so another one needs a sign-out first.
    sign_out_url: str = ""
    # How its tokens refresh, in a few words, for operators.
    refresh: str = ""
    # Where the facts above come from.
    sources: tuple[str, ...] = ()

    def base_url(self, backend: Any, data: Mapping[str, Any]) -> str:
        """The API base for one association: the site's setting, else the profile's; "" when
        neither says (then only absolute URLs on `hosts()` are accepted)."""
        configured = backend.setting("API_BASE_URL")
        if configured:
            return str(configured).rstrip("/")
        rule = self.api_base_url
        if callable(rule):
            return rule(backend, data).rstrip("/")
        return fill(rule, data).rstrip("/")

    def hosts(self, backend: Any) -> tuple[str, ...]:
        """Other origins the token may go to: the profile's and the site's setting."""
        configured = backend.setting("API_HOSTS") or ()
        if isinstance(configured, str):
            configured = [part.strip() for part in configured.split(",") if part.strip()]
        return (*self.api_hosts, *configured)

    def revoke(
        self, backend: Any, credentials: Credentials, uid: str, data: Mapping[str, Any]
    ) -> bool | None:
        """Revoke the grant: True (confirmed), False (refused), None (no revocation)."""
        if self.revocation is None:
            return None
        if isinstance(self.revocation, Revocation):
            return self.revocation.revoke(
                backend, credentials, uid, api_base_url=self.base_url(backend, data)
            )
        return self.revocation(backend, credentials, uid)

    def describe_revocation(self, backend: Any) -> str:
        if self.revocation is None:
            return "none (the provider offers no revocation)"
        if isinstance(self.revocation, Revocation):
            try:
                base = self.base_url(backend, {})
            except Exception:
                base = ""
            described = self.revocation.describe(
                client_id=backend.get_key_and_secret()[0] or "{client_id}", api_base_url=base
            )
            if self.refresh_before_revoke:
                return f"{described}, refreshed first when expired"
            return described
        if self.revocation is social_core_revoke:
            if getattr(backend, "REVOKE_TOKEN_URL", "") or backend.setting("REVOKE_TOKEN_URL"):
                method = getattr(backend, "REVOKE_TOKEN_METHOD", "POST")
                return f"social-core revoke_token ({method} {backend.revoke_token_url('', '')})"
            return "none (no REVOKE_TOKEN_URL)"
        return (self.revocation.__doc__ or self.revocation.__name__).strip().splitlines()[0]

    def is_reauth_code(self, code: object) -> bool:
        return isinstance(code, str) and bool(self.reauth_codes) and code.startswith(
            self.reauth_codes
        )

    def is_approval_code(self, code: object) -> bool:
        """Whether an API error code says the user must approve access in the provider's app."""
        return isinstance(code, str) and bool(self.approval_codes) and code.startswith(
            self.approval_codes
        )

    def provider_code(self, error: BaseException) -> object:
        """The provider's error code of a failed token call: the profile's `error_code` read
        from the answer's body when it has one, else social-core's (OAuth's `error`)."""
        code = getattr(error, "provider_code", None)
        if self.error_code is None:
            return code
        body = _error_body(error)
        own = self.error_code(body) if body is not None else None
        return own or code

    def is_reauth_error(self, error: BaseException) -> bool:
        """Whether a failed token call says the grant is gone, by this provider's codes."""
        return self.is_reauth_code(self.provider_code(error))

    def request_headers(self, backend: Any) -> dict[str, str]:
        """Headers the provider's API wants on every request, besides the token."""
        return dict(self.headers(backend)) if self.headers else {}


def _error_body(error: BaseException) -> Any:
    """The JSON body of the provider's answer behind `error` (social-core raises its own
    exception from requests' HTTPError, which holds the response); None when there is none."""
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, requests.Response):
            try:
                return response.json()
            except ValueError:
                return None
        seen = seen.__cause__
    return None


def fill(template: str, data: Mapping[str, Any]) -> str:
    """Fill `{field}` names of `template` (dotted names allowed: "{athlete.id}") from the
    association's stored `data`; a missing or empty field gives "" (no base URL) rather than
    a URL with a hole in it.

    Only a field that opens the template may be a whole URL (Salesforce's "{instance_url}",
    from the provider's token response), and it must be an http(s) URL. Every other value is
    percent-encoded, so a captured value can never move a URL to another host or path.
    """
    fields = _FIELD.findall(template)
    values: dict[str, str] = {}
    for name in fields:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            return ""
        if template.startswith(f"{{{name}}}"):
            if not str(value).lower().startswith(("https://", "http://")):
                return ""
            values[name] = str(value).rstrip("/")
        else:
            values[name] = quote(str(value), safe="")
    return _FIELD.sub(lambda match: values[match[1]], template)


_FIELD = re.compile(r"\{([^{}]+)\}")


_PROFILES: dict[str, Profile] = {}


def register(*profiles: Profile) -> None:
    """Add profiles to the registry (a later one with the same name replaces the earlier).

    The shipped profiles are registered first, so that a site's own profile for a backend
    that has one (registered from its AppConfig.ready(), say) replaces it rather than being
    replaced when the shipped ones load.
    """
    _load_builtin()
    for profile in profiles:
        _PROFILES[profile.name] = profile


def registered() -> Mapping[str, Profile]:
    """Every registered profile by backend name (declared providers are not among them)."""
    _load_builtin()
    return dict(_PROFILES)


def profile_for(name: str) -> Profile:
    """Return the profile of the backend named `name`: a declared provider's (built from its
    declaration), a registered one, or the safe default."""
    from backends.declared_profile import declared_profile  # a declaration: backend + profile

    declared = declared_profile(name)
    if declared is not None:
        return declared
    _load_builtin()
    return _PROFILES.get(name) or Profile(name=name)


def has_profile(name: str) -> bool:
    from backends.declared_profile import declared_profile

    _load_builtin()
    return name in _PROFILES or declared_profile(name) is not None


def _load_builtin() -> None:
    """Import the shipped profiles once (they register themselves)."""
    import backends.monzo
    import backends.profiles.stock  # noqa: F401
