"""The schema of a provider declaration (``CUSTODIAN_PROVIDERS[name]``) and its validation.

A declaration is one JSON object per provider; docs/adding-a-provider.md explains each key.
Every problem is reported with the provider and the key path, the way it is written in the
settings (``CUSTODIAN_PROVIDERS['acme']['revocation']['placement'] must be one of form,
json, query, bearer``): `problems()` lists them all for ``manage.py check``, and
`ProviderDeclaration.from_settings()` refuses a declaration that has any.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from backends.origins import UnsafeURL, origin_of
from backends.profiles.revocation import CLIENT_AUTHS, METHODS, PLACEMENTS, TOKEN_KINDS

PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Names taken by backends with their own module.
RESERVED_NAMES = frozenset({"monzo"})
# `{field}` in an api_base_url template.
TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
# Keys an issuer declaration must not carry: discovery is the one source of these.
DISCOVERED = ("authorization_url", "token_url", "userinfo_url", "revocation_url")
REQUIRED = ("authorization_url", "token_url", "api_base_url")
TOKEN_AUTHS = ("client_secret_post", "client_secret_basic")

# Keys of `revocation` (their meaning: backends/profiles/revocation.py) and their checks.
REVOCATION_KEYS = ("url", "method", "token", "placement", "auth", "param", "hint")
DECLARED_CLIENT_AUTHS = tuple(auth for auth in CLIENT_AUTHS if auth in ("basic", "post", "none"))
ERROR_RULE_KEYS = ("error_when", "code_key", "reconnect")
# Pages of the provider that people are sent to (links on the site's pages).
PAGE_KEYS = ("connected_apps_url", "sign_out_url")
# Authorization parameters that are the protocol's own: `select_account` must not replace them.
PROTOCOL_PARAMS = frozenset({
    "client_id", "redirect_uri", "redirect_state", "state", "response_type", "scope",
    "code_challenge", "code_challenge_method", "nonce",
})


@dataclass(frozen=True)
class ErrorRules:
    """Which HTTP-200 bodies of the token endpoint are errors, and which codes mean
    "reconnect" (Slack answers ``200 {"ok": false, "error": "invalid_refresh_token"}``)."""

    # {dotted key: value}: a body where each key has that value is an error; or a dotted key
    # whose mere presence is one (GitHub-style "error"). None: only HTTP errors are errors.
    error_when: Mapping[str, Any] | str | None = None
    code_key: str = "error"
    reconnect: tuple[str, ...] = ()

    def is_error(self, body: object) -> bool:
        if not isinstance(body, Mapping) or self.error_when is None:
            return False
        if isinstance(self.error_when, str):
            return dig(body, self.error_when) is not None
        return all(dig(body, key) == value for key, value in self.error_when.items())

    def code(self, body: object) -> str | None:
        value = dig(body, self.code_key) if isinstance(body, Mapping) else None
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ProviderDeclaration:
    """One provider as declared in settings (keys: docs/adding-a-provider.md)."""

    name: str
    authorization_url: str = ""
    token_url: str = ""
    api_base_url: str = ""
    userinfo_url: str = ""
    issuer: str = ""
    id_key: str = "id"
    title: str = ""
    username_key: str = ""
    scopes: list[str] = field(default_factory=list)
    pkce: bool = True
    revocation_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    token_auth: str = "client_secret_post"
    api_hosts: list[str] = field(default_factory=list)
    auth_params: dict[str, str] = field(default_factory=dict)
    scope_separator: str = " "
    token_body: str = "form"
    token_response_path: str = ""
    userinfo_method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    capture: list[str] = field(default_factory=list)
    revocation: dict[str, Any] = field(default_factory=dict)
    error_rules: dict[str, Any] = field(default_factory=dict)
    keepalive: int | None = None
    refresh_token_expires_key: str = ""
    connected_apps_url: str = ""
    sign_out_url: str = ""
    select_account: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, name: str) -> ProviderDeclaration:
        """Return the validated declaration of `name`, or raise ImproperlyConfigured.

        Read at call time (settings may change), but validated once per content: a declared
        backend reads its declaration many times per login or refresh, and validating costs
        some 50 µs. The cache keeps its own copy of what it validated and compares it with
        the settings, so a declaration replaced or changed in place is validated again.
        """
        raw = settings.CUSTODIAN_PROVIDERS.get(name)
        if raw is None:
            raise ImproperlyConfigured(f"CUSTODIAN_PROVIDERS has no provider named {name!r}")
        cached = _VALIDATED.get(name)
        if cached is not None and cached[0] == raw:
            return cached[1]
        found = problems(name, raw)
        if found:
            raise ImproperlyConfigured("; ".join(found))
        validated = copy.deepcopy(raw)
        declaration = cls(name=name, **copy.deepcopy(validated))
        _VALIDATED[name] = (validated, declaration)
        return declaration

    @property
    def rules(self) -> ErrorRules:
        raw = self.error_rules
        return ErrorRules(
            error_when=raw.get("error_when"),
            code_key=raw.get("code_key", "error"),
            reconnect=tuple(raw.get("reconnect", ())),
        )


# name -> (the declaration as validated, the ProviderDeclaration built from it)
_VALIDATED: dict[str, tuple[Any, ProviderDeclaration]] = {}


def dig(data: object, path: str) -> Any:
    """The value at a dotted `path` ("owner.user.id") of nested mappings, or None."""
    value = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


# --- validation -------------------------------------------------------------------------------

KNOWN = tuple(f.name for f in fields(ProviderDeclaration) if f.name != "name")


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_str_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    )


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# key -> (is the value well typed?, what it must be)
TYPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "scopes": (_is_str_list, "a list of strings"),
    "api_hosts": (_is_str_list, "a list of origins"),
    "capture": (_is_str_list, "a list of dotted field names"),
    "auth_params": (_is_str_map, "an object of strings"),
    "headers": (_is_str_map, "an object of strings"),
    "select_account": (_is_str_map, "an object of strings"),
    "pkce": (lambda value: isinstance(value, bool), "true or false"),
    "revocation": (lambda value: isinstance(value, dict), "an object"),
    "error_rules": (lambda value: isinstance(value, dict), "an object"),
    "keepalive": (_is_positive_int, "a positive number of seconds"),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "token_auth": TOKEN_AUTHS,
    "token_body": ("form", "json"),
    "userinfo_method": ("GET", "POST"),
}


def problems(name: str, raw: object) -> list[str]:
    """Every problem of the declaration `raw` of provider `name`, each naming its key."""
    where = f"CUSTODIAN_PROVIDERS[{name!r}]"
    if not isinstance(raw, dict):
        return [f"{where} must be a JSON object of settings, not {type(raw).__name__}"]
    found: list[str] = []
    if not PROVIDER_NAME.fullmatch(name) or name in RESERVED_NAMES:
        found.append(
            f"CUSTODIAN_PROVIDERS: {name!r} is not a usable provider name (lower-case letters, "
            f"digits and _, at most 32; not {', '.join(sorted(RESERVED_NAMES))})"
        )
    for key in raw:
        if key not in KNOWN:
            found.append(f"{where} has an unknown key {key!r}{_did_you_mean(key, KNOWN)}")
    for key, value in raw.items():
        if key not in KNOWN:
            continue
        check, wanted = TYPES.get(key, (_is_str, "a string"))
        if not check(value):
            found.append(f"{where}[{key!r}] must be {wanted}, not {_json_type(value)}")
        elif key in CHOICES and value not in CHOICES[key]:
            found.append(f"{where}[{key!r}] must be one of {', '.join(CHOICES[key])}")
    if raw.get("issuer"):
        found += _issuer_problems(where, raw)
    else:
        missing = [key for key in REQUIRED if not raw.get(key)]
        if missing:
            found.append(f"{where} needs {', '.join(missing)} (or an issuer)")
    if _is_str_list(raw.get("api_hosts", [])) and not all(
        _is_origin(host) for host in raw.get("api_hosts", [])
    ):
        found.append(
            f"{where}['api_hosts'] must be a list of origins such as "
            '"https://files.example.com" (scheme and host, optionally a port; no path)'
        )
    found += _template_problems(where, raw)
    found += _page_problems(where, raw)
    if _is_str_map(raw.get("select_account", {})):
        found += [
            f"{where}['select_account'] must not set {key!r}: the protocol sets it"
            for key in raw.get("select_account", {})
            if key in PROTOCOL_PARAMS
        ]
    if isinstance(raw.get("revocation"), dict):
        if raw.get("revocation_url"):
            found.append(f"{where} has both revocation and revocation_url: keep one")
        found += _revocation_problems(f"{where}['revocation']", raw["revocation"])
    if isinstance(raw.get("error_rules"), dict):
        found += _error_rule_problems(f"{where}['error_rules']", raw["error_rules"])
    return found


def _template_problems(where: str, raw: dict[str, Any]) -> list[str]:
    base = raw.get("api_base_url")
    if not isinstance(base, str):
        return []
    capture = raw.get("capture")
    captured: list[str] = capture if isinstance(capture, list) else []
    return [
        f"{where}['api_base_url'] names {{{named}}}, which is not in {where}['capture']"
        for named in TEMPLATE_FIELD.findall(base)
        if named not in captured
    ]


def _page_problems(where: str, raw: dict[str, Any]) -> list[str]:
    """The provider's pages are links people follow: https only, except a provider on
    this machine (the demo provider at http://127.0.0.1:8001)."""
    return [
        f"{where}[{key!r}] must be an https:// URL of the provider's page (http:// only on "
        "loopback, for a provider on this machine)"
        for key in PAGE_KEYS
        if isinstance(raw.get(key), str) and raw[key] and not is_page_url(raw[key])
    ]


def is_page_url(value: str) -> bool:
    """Whether `value` may be offered to people as a link to the provider's page."""
    try:
        scheme, host, _port = origin_of(value)
    except UnsafeURL:
        return False
    return scheme == "https" or _is_loopback(host)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _revocation_problems(where: str, revocation: dict[str, Any]) -> list[str]:
    found = [
        f"{where} has an unknown key {key!r}{_did_you_mean(key, REVOCATION_KEYS)}"
        for key in revocation
        if key not in REVOCATION_KEYS
    ]
    if not isinstance(revocation.get("url"), str) or not revocation.get("url"):
        found.append(f"{where}['url'] is required: the provider's revocation endpoint")
    for key, choices in (
        ("method", METHODS),
        ("token", TOKEN_KINDS),
        ("placement", PLACEMENTS),
        ("auth", DECLARED_CLIENT_AUTHS),
    ):
        if key in revocation and revocation[key] not in choices:
            found.append(f"{where}[{key!r}] must be one of {', '.join(choices)}")
    if "param" in revocation and not _is_str(revocation["param"]):
        found.append(f"{where}['param'] must be a string, not {_json_type(revocation['param'])}")
    if "hint" in revocation and not isinstance(revocation["hint"], bool):
        found.append(f"{where}['hint'] must be true or false")
    return found


def _error_rule_problems(where: str, rules: dict[str, Any]) -> list[str]:
    found = [
        f"{where} has an unknown key {key!r}{_did_you_mean(key, ERROR_RULE_KEYS)}"
        for key in rules
        if key not in ERROR_RULE_KEYS
    ]
    when = rules.get("error_when")
    if when is not None and not isinstance(when, (str, dict)):
        found.append(
            f"{where}['error_when'] must be an object of field values or a field name, "
            f"not {_json_type(when)}"
        )
    if "code_key" in rules and not _is_str(rules["code_key"]):
        found.append(f"{where}['code_key'] must be a string")
    if "reconnect" in rules and not _is_str_list(rules["reconnect"]):
        found.append(f"{where}['reconnect'] must be a list of strings")
    return found


def _issuer_problems(where: str, raw: dict[str, Any]) -> list[str]:
    """An issuer is an absolute http(s) URL without query or fragment (OpenID Connect
    Discovery §4: {issuer}/.well-known/openid-configuration)."""
    issuer = raw["issuer"]
    parts = urlsplit(issuer) if isinstance(issuer, str) else None
    found = []
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.netloc
        or parts.query
        or parts.fragment
    ):
        found.append(
            f"{where}['issuer'] must be the provider's issuer URL, such as "
            '"https://id.example" (no query or fragment)'
        )
    given = [key for key in DISCOVERED if raw.get(key)]
    if given:
        found.append(
            f"{where} has an issuer, so {', '.join(given)} come from its discovery "
            "document: remove them"
        )
    return found


def _is_origin(value: object) -> bool:
    """Return whether `value` is exactly scheme://host[:port], read as the session reads it
    (backends/origins.py), with no path, query or fragment."""
    if not isinstance(value, str):
        return False
    try:
        origin_of(value)
    except UnsafeURL:
        return False
    parts = urlsplit(value)
    return parts.path in ("", "/") and not parts.query and not parts.fragment


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _json_type(value: object) -> str:
    """The JSON name of `value`'s type, as the person wrote it in settings or JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {
        str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"
    }.get(type(value), type(value).__name__)
