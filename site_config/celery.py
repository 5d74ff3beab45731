"""The Celery app ("custodian"): background refreshes spread over many workers and hosts.

Configuration comes from Django settings under the CELERY_ namespace (CELERY_BROKER_URL from
the environment, default redis://127.0.0.1:6379/0; CELERY_BEAT_SCHEDULE). Run it with::

    celery -A site_config worker --pool threads -c 8
    celery -A site_config beat          # exactly one, anywhere
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")

app = Celery("custodian")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks are bound to this app explicitly (integrations/background/tasks.py); discovery makes
# a worker import them.
app.autodiscover_tasks(["integrations.background"])
