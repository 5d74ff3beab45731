"""Refuse to start on a configuration error with one line, not a traceback.

Settings raise ImproperlyConfigured for what an operator must fix (no SECRET_KEY with DEBUG
off, a malformed key, bad JSON). A traceback through Django's settings loader hides that
sentence among forty lines, so the entry points (manage.py, wsgi.py, asgi.py) load the
settings up front through `load_settings_or_exit` and print only the sentence.
"""

from __future__ import annotations

import sys

# gunicorn's "App failed to load" exit status: its arbiter then stops instead of starting
# one failing worker after another. Any non-zero status would do for other servers.
APP_LOAD_ERROR = 4


def load_settings_or_exit(status: int = 1) -> None:
    """Import the settings now; on ImproperlyConfigured print one line and exit with `status`."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 (importing the settings module is the point)
    except ImproperlyConfigured as error:
        message = " ".join(str(error).split())  # one line, whatever the message holds
        sys.stderr.write(f"Custodian cannot start: {message}\n")
        sys.stderr.flush()
        raise SystemExit(status) from None
