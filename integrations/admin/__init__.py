"""The Django admin of social associations, their history and users.

Django's admin autodiscovery imports this package; importing the modules registers them.
"""

from integrations.admin import associations, history, openid, users  # noqa: F401
