"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from site_config.startup import APP_LOAD_ERROR, load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
# A configuration error is one line on stderr and a stop, not a traceback per worker.
load_settings_or_exit(APP_LOAD_ERROR)
application = get_asgi_application()
