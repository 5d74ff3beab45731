"""Custodian's strategy looks settings up as Python Social Auth does (the backend's own name
first, then SOCIAL_AUTH_<NAME>, then the bare name), remembering only which name is defined."""

from __future__ import annotations

from django.conf import settings as django_settings
from social_core.strategy import BaseStrategy
from social_django.utils import load_strategy


class Acme:
    name = "acme"


ACME = Acme()


def lookups(strategy, backend=ACME):
    ours = strategy.setting("WIDGETS", "fallback", backend)
    theirs = BaseStrategy.setting(strategy, "WIDGETS", "fallback", backend)
    assert ours == theirs
    return ours


def test_a_setting_is_read_from_the_name_defined_now(settings):
    strategy = load_strategy()
    assert lookups(strategy) == "fallback"

    settings.WIDGETS = "bare"
    assert lookups(strategy) == "bare"
    settings.SOCIAL_AUTH_WIDGETS = "site-wide"
    assert lookups(strategy) == "site-wide"
    settings.SOCIAL_AUTH_ACME_WIDGETS = "acme's"
    assert lookups(strategy) == "acme's"
    assert lookups(strategy, backend=None) == "site-wide"

    del settings.SOCIAL_AUTH_ACME_WIDGETS
    assert lookups(strategy) == "site-wide"


def test_a_value_changed_or_removed_without_a_signal_is_still_read_afresh(settings):
    strategy = load_strategy()
    settings.SOCIAL_AUTH_ACME_WIDGETS = "acme's"
    settings.SOCIAL_AUTH_WIDGETS = "site-wide"
    assert lookups(strategy) == "acme's"

    # Plain assignment to django.conf.settings sends no setting_changed.
    django_settings.SOCIAL_AUTH_ACME_WIDGETS = "changed in place"
    assert lookups(strategy) == "changed in place"
    delattr(django_settings, "SOCIAL_AUTH_ACME_WIDGETS")
    assert lookups(strategy) == "site-wide"
