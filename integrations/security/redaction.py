"""Keep tokens out of logs and error pages.

A logging filter rewrites every record passing a handler (ours, Django's, social-core's,
requests/urllib3 debug output), and an exception-reporter filter hides token-bearing
variables and POST parameters on Django's technical error page and in error e-mails.

Both redact by name (``access_token=...``, ``Bearer ...``) and by value: every token and
client secret the process knows (``integrations.security.secrets_registry``) is masked wherever it
appears, since a bare value (a decorator's ``args`` tuple, a crypto helper's ``value``, a JSON
blob in ``request.META``) has no name to catch it by.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pprint import pformat
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter as DjangoExceptionReporter
from django.views.debug import SafeExceptionReporterFilter

from integrations.security import secrets_registry

REDACTED = secrets_registry.MASK

# Names whose values are secrets wherever they appear: JSON, form bodies, query strings,
# repr(). (S105 below: names of secrets, not secrets.)
_SECRET_NAMES = (
    r"(?:access_token|refresh_token|id_token|client_secret|code_verifier|token|password"  # noqa: S105
    r"|secret|api_key|sessionid|csrftoken)"
)
# (pattern, replacement, needles): a pattern runs only when one of its needles occurs in the
# case-folded text. Most log lines hold none, and a substring test is far cheaper than a scan.
_PATTERNS = [
    # Authorization: Bearer <token> (also Basic credentials)
    (
        re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/=]{6,}"),
        r"\1 " + REDACTED,
        ("bearer", "basic"),
    ),
    # "access_token": "..."   access_token=...   'refresh_token': '...'
    (
        re.compile(
            r"""(?i)(["']?\b""" + _SECRET_NAMES + r"""\b["']?\s*[:=]\s*["']?)([^"'&\s,;}\]]+)"""
        ),
        r"\1" + REDACTED,
        ("token", "secret", "password", "code_verifier", "api_key", "sessionid"),
    ),
    # The OAuth authorization code in a callback URL or a form body (not error "code"s).
    (re.compile(r"((?:^|[?&])code=)[^&\s\"']+"), r"\1" + REDACTED, ("code=",)),
    # Ciphertext from extra_data is no secret by itself, but has no business in a log.
    (re.compile(r"enc:[A-Za-z0-9\-_=]{16,}"), "enc:" + REDACTED, ("enc:",)),
    # Passwords in URLs: postgres://user:password@host, redis://:password@host.
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@"),
        r"\1" + REDACTED + "@",
        ("://",),
    ),
    # Django password hashes (SQL parameters, admin pages): algorithm$...$salt$hash.
    (
        re.compile(
            r"\b(pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|md5|sha1"
            r"|unsalted_md5|unsalted_sha1|crypt)\$[^\s'\",;)\]}]+"
        ),
        r"\1$" + REDACTED,
        ("$",),
    ),
]


def redact(text: str) -> str:
    """Return `text` with every known secret value, bearer credential and token-like field
    replaced. Known values go first: a name pattern may stop at a quote inside a secret."""
    text = secrets_registry.mask(text)
    lowered = text.casefold()
    for pattern, replacement, needles in _PATTERNS:
        if any(needle in lowered for needle in needles):
            text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrite a record's message (and traceback) with secrets redacted; never drops records.

    Created when Django configures logging, right after the settings are loaded: the
    configured secrets are registered then, before anything can log them.
    """

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        _register_configured_secrets()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        # django.db.backends passes the query and its parameters as extras too; a formatter
        # or a structured handler may print those instead of the message.
        for name in ("sql", "params"):
            if hasattr(record, name):
                setattr(record, name, _redact_deep(getattr(record, name)))
        return True


def _register_configured_secrets() -> None:
    from django.conf import settings

    if settings.configured:
        secrets_registry.register_settings(settings)


_SENSITIVE_VARIABLE = re.compile(
    r"(?i)token|secret|credential|extra_data|password|verifier|^code$|response|^data$|^params$"
)
# Frames of these modules handle nothing but keys, plaintext and ciphertext: their local
# variables (crypto.encrypt's `value`, the `key` of a Fernet key list) are all hidden.
_CRYPTO_MODULES = (
    "integrations.store.crypto", "site_config.keys", "cryptography", "base64", "hmac"
)


def _is_crypto_frame(tb_frame: Any) -> bool:
    module = str(tb_frame.f_globals.get("__name__", ""))
    return any(module == name or module.startswith(name + ".") for name in _CRYPTO_MODULES)


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: every request is treated as sensitive, token-bearing POST/GET
    parameters and frame variables are hidden, and what remains (frame variables, settings,
    META, cookies) is redacted by name and by value."""

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|ENCRYPTION", flags=re.I
    )

    def is_active(self, request: Any) -> bool:
        return True

    def get_post_parameters(self, request: Any) -> Any:
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed: Any = parameters.copy()  # a QueryDict
        for name in cleansed:
            if _SENSITIVE_VARIABLE.search(name) or name in {"state", "code"}:
                cleansed[name] = self.cleansed_substitute
            else:
                cleansed.setlist(name, [redact(str(value)) for value in cleansed.getlist(name)])
        return cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        if _is_crypto_frame(tb_frame):
            return [(name, self.cleansed_substitute) for name, _ in variables]
        return [
            (
                name,
                self.cleansed_substitute
                if _SENSITIVE_VARIABLE.search(name)
                else _redact_value(value),
            )
            for name, value in variables
        ]

    def get_safe_settings(self) -> dict[str, Any]:
        # Names first (Django's cleanse_setting, also inside CUSTODIAN_PROVIDERS' dicts), then
        # values: a client secret under an innocent name, a password in CELERY_BROKER_URL.
        return {name: _redact_deep(value) for name, value in super().get_safe_settings().items()}

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        # Under runserver META holds the whole environment (CUSTODIAN_PROVIDERS' JSON...).
        meta = {name: _redact_deep(value) for name, value in super().get_safe_request_meta(
            request).items()}
        for name in ("QUERY_STRING", "HTTP_AUTHORIZATION", "REQUEST_URI", "RAW_URI"):
            if name in meta:
                meta[name] = self.cleansed_substitute
        return meta

    def get_safe_cookies(self, request: Any) -> dict[str, Any]:
        return {name: _redact_deep(value) for name, value in super().get_safe_cookies(
            request).items()}


class ExceptionReporter(DjangoExceptionReporter):
    """Django's reporter, with the query string (the OAuth `code`, `state`) and the exception
    message cleansed too, and every known secret masked in the page as rendered."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if "request_GET_items" in data and self.request is not None:
            data["request_GET_items"] = [
                (
                    name,
                    "********************"
                    if name in {"code", "state"} or _SENSITIVE_VARIABLE.search(name)
                    else redact(str(value)),
                )
                for name, value in self.request.GET.items()
            ]
        if data.get("request") is not None:
            data["request_insecure_uri"] = redact(str(data.get("request_insecure_uri", "")))
        for name in ("exception_value", "exception_notes"):
            if isinstance(data.get(name), str):
                data[name] = redact(data[name])
        return data

    # The last line of defence: whatever part of the page showed a known value (a template's
    # context, a chained exception's message), it is masked in what is sent.
    # (Masking only swaps text for "[redacted]": what was safe HTML stays safe.)
    def get_traceback_html(self) -> SafeString:
        return mark_safe(secrets_registry.mask(super().get_traceback_html()))  # noqa: S308

    def get_traceback_text(self) -> SafeString:
        return mark_safe(secrets_registry.mask(super().get_traceback_text()))  # noqa: S308


class _Shown(str):
    """A string shown as is (no quotes) on the error page."""

    def __repr__(self) -> str:
        return str(self)


def _redact_value(value: Any) -> Any:
    try:
        return _Shown(redact(pformat(value)))
    except Exception:
        return _Shown(REDACTED)


def _redact_deep(value: Any, depth: int = 0) -> Any:
    """Redact the strings in a (nested) value, keeping its shape for the page's pprint."""
    if isinstance(value, str):
        return redact(value)
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {key: _redact_deep(item, depth + 1) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_redact_deep(item, depth + 1) for item in value)
    if isinstance(value, (int, float, bool, type(None))):
        return value
    try:
        shown = repr(value)
    except Exception:
        return value
    masked = secrets_registry.mask(shown)
    return value if masked == shown else _Shown(masked)
