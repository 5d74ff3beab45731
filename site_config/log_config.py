"""The site's LOGGING: every handler redacts secrets (see site_config/settings.py)."""

from __future__ import annotations

from typing import Any


def logging_config(*, level: str, log_sql: bool) -> dict[str, Any]:
    """LOGGING for `level`; with `log_sql`, SQL queries are logged at DEBUG (local use only)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_secrets": {"()": "integrations.security.redaction.RedactingFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "django.server": {
                "()": "django.utils.log.ServerFormatter",
                "format": "[{server_time}] {message}",
                "style": "{",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["redact_secrets"],
            },
            # runserver's request lines carry callback query strings (?code=...).
            "django.server": {
                "class": "logging.StreamHandler",
                "formatter": "django.server",
                "filters": ["redact_secrets"],
            },
            "mail_admins": {
                "class": "django.utils.log.AdminEmailHandler",
                "level": "ERROR",
                "filters": ["redact_secrets"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {
                "handlers": ["console"],
                "level": level,
                "propagate": False,
            },
            "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
            # Its DEBUG records are the SQL queries with their parameters: see CUSTODIAN_LOG_SQL.
            "django.db.backends": {"level": "DEBUG" if log_sql else "INFO"},
        },
    }
