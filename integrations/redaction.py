"""Keep tokens out of logs and error pages.

A logging filter rewrites every record passing a handler (ours, Django's, social-core's,
requests/urllib3 debug output), and an exception-reporter filter hides token-bearing
variables and POST parameters on Django's technical error page and in error e-mails.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pprint import pformat

from django.views.debug import ExceptionReporter as DjangoExceptionReporter
from django.views.debug import SafeExceptionReporterFilter

REDACTED = "[redacted]"

# Names whose values are secrets wherever they appear: JSON, form bodies, query strings, repr().
_SECRET_NAMES = r"(?:access_token|refresh_token|id_token|client_secret|code_verifier|token|password)"
_PATTERNS = [
    # Authorization: Bearer <token> (also Basic credentials)
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/=]{6,}"), r"\1 " + REDACTED),
    # "access_token": "..."   access_token=...   'refresh_token': '...'
    (
        re.compile(
            r"""(?i)(["']?\b""" + _SECRET_NAMES + r"""\b["']?\s*[:=]\s*["']?)([^"'&\s,;}\]]+)"""
        ),
        r"\1" + REDACTED,
    ),
    # The OAuth authorization code in a callback URL or a form body (not error "code"s).
    (re.compile(r"((?:^|[?&])code=)[^&\s\"']+"), r"\1" + REDACTED),
    # Ciphertext from extra_data is no secret by itself, but has no business in a log.
    (re.compile(r"enc:[A-Za-z0-9\-_=]{16,}"), "enc:" + REDACTED),
]


def redact(text: str) -> str:
    """Return `text` with bearer credentials and token-like fields replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrite a record's message (and traceback) with secrets redacted; never drops records."""

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
        return True


_SENSITIVE_VARIABLE = re.compile(r"(?i)token|secret|credential|extra_data|password|verifier|^code$|response|^data$|^params$")


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: every request is treated as sensitive, token-bearing POST/GET
    parameters and frame variables are hidden, and what remains is redacted."""

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|ENCRYPTION", flags=re.I
    )

    def is_active(self, request: Any) -> bool:
        return True

    def get_post_parameters(self, request: Any) -> Any:
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed = parameters.copy()
        for name in cleansed:
            if _SENSITIVE_VARIABLE.search(name) or name in {"state", "code"}:
                cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [
            (name, self.cleansed_substitute if _SENSITIVE_VARIABLE.search(name) else _redact_value(value))
            for name, value in variables
        ]


    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        for name in ("QUERY_STRING", "HTTP_AUTHORIZATION", "REQUEST_URI", "RAW_URI"):
            if name in meta:
                meta[name] = self.cleansed_substitute
        return meta


class ExceptionReporter(DjangoExceptionReporter):
    """Django's reporter, with the query string (the OAuth `code`, `state`) cleansed too."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if "request_GET_items" in data:
            data["request_GET_items"] = [
                (name, "********************" if name in {"code", "state"} or
                 _SENSITIVE_VARIABLE.search(name) else redact(value))
                for name, value in self.request.GET.items()
            ]
        if data.get("request") is not None:
            data["request_insecure_uri"] = redact(str(data.get("request_insecure_uri", "")))
        return data


class _Shown(str):
    """A string shown as is (no quotes) on the error page."""

    def __repr__(self) -> str:
        return str(self)


def _redact_value(value: Any) -> Any:
    try:
        return _Shown(redact(pformat(value)))
    except Exception:
        return _Shown(REDACTED)
