"""Settings for the test suite: the development settings, whatever the shell exports.

DEBUG defaults to off (site_config/settings.py), and the suite needs the development
defaults (a derived key, the demo provider, local hosts). pytest-django imports the settings
before any conftest.py runs, so a conftest is too late to set DEBUG: this module sets it first.
Setting it in os.environ (not only here) carries it to the site processes tests start
(Celery workers, concurrency helpers). Production behaviour is tested in subprocesses with an
explicit environment (tests/test_headers.py, tests/test_security.py).
"""

import os

os.environ["DEBUG"] = "true"

from site_config.settings import *  # noqa: F403

# Tests create and log in site users by the dozen; Django's default hashing is deliberately slow
# (a third of a second per password). Production hashing is site_config/settings.py's.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
