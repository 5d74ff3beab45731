"""Django project package. `celery_app` is the Celery app, imported on first use only:
settings, manage.py and the web process never pay for (or depend on) importing Celery."""

from __future__ import annotations

from typing import Any

__all__ = ("celery_app",)


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from site_config.celery import app

        return app
    raise AttributeError(f"module 'site_config' has no attribute {name!r}")
