"""Times as people read them (integrations/templatetags/moments.py): the phrases, and the
<time> elements the connections page and the admin render, under a frozen clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template

from integrations.models import CredentialEvent
from integrations.store.history import record_event
from integrations.templatetags.moments import moment_html, relative_phrase
from tests.test_admin import make_association

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 12, 1, 5, tzinfo=UTC)

# (seconds from now, phrase): the boundaries of each rule and unit.
PHRASES = [
    (0, "just now"),
    (-59, "just now"),
    (-60, "1 minute ago"),
    (-119, "1 minute ago"),
    (-3 * 3600 - 100, "3 hours ago"),
    (-86_399, "23 hours ago"),
    (-86_400, "1 day ago"),
    (-13 * 86_400, "1 week ago"),
    (-40 * 86_400, "1 month ago"),
    (-364 * 86_400, "11 months ago"),
    (-800 * 86_400, "2 years ago"),
    (1, "in under a minute"),
    (59, "in under a minute"),
    (60, "in 1 minute"),
    (42 * 60 + 5, "in 42 minutes"),
    (2 * 86_400 + 3600, "in 2 days"),
    (21 * 86_400, "in 3 weeks"),
]


@pytest.mark.parametrize(("seconds", "expected"), PHRASES)
def test_relative_phrases(seconds, expected):
    phrase = relative_phrase(NOW + timedelta(seconds=seconds), NOW)
    assert phrase.replace("\xa0", " ") == expected
    # A number and its unit never break over two lines.
    assert not re.search(r"\d ", phrase)


def test_past_prefix_words_only_the_past():
    expired = relative_phrase(NOW - timedelta(hours=3), NOW, past_prefix="expired ")
    assert expired.replace("\xa0", " ") == "expired 3 hours ago"
    assert relative_phrase(NOW, NOW, past_prefix="expired ") == "expired just now"
    soon = relative_phrase(NOW + timedelta(minutes=5), NOW, past_prefix="expired ")
    assert soon.replace("\xa0", " ") == "in 5 minutes"


def test_the_time_element(time_machine):
    time_machine.move_to(NOW, tick=False)
    html = moment_html(NOW + timedelta(minutes=42), past_prefix="expired ")
    assert html == (
        '<time class="moment" datetime="2026-03-12T01:47:00Z" title="12 Mar 2026, 01:47 UTC" '
        'data-past-prefix="expired "><span class="moment-relative">in 42\xa0minutes</span> '
        '<span class="moment-absolute">12 Mar 2026, 01:47 UTC</span></time>'
    )
    # Compact: the absolute time in the tooltip only; a time in another zone is the same instant.
    auckland = (NOW - timedelta(days=1)).astimezone(ZoneInfo("Pacific/Auckland"))
    compact = moment_html(auckland, compact=True)
    assert 'datetime="2026-03-11T01:05:00Z"' in compact
    assert 'title="11 Mar 2026, 01:05 UTC"' in compact
    assert ">1\xa0day ago</span></time>" in compact and "moment-absolute" not in compact
    # Nothing to show: the given word, escaped.
    assert moment_html(None, empty="<never>") == "&lt;never&gt;"


def test_the_template_tag(time_machine):
    time_machine.move_to(NOW, tick=False)
    template = Template(
        "{% load moments %}{% moment when compact=True %}|{% moment none empty='not yet' %}"
    )
    rendered = template.render(Context({"when": NOW - timedelta(minutes=3), "none": None}))
    assert rendered.endswith(">3\xa0minutes ago</span></time>|not yet")


def _time_elements(content: str) -> dict[str, str]:
    """Each fact of the connections page (its <dt>) and the <time> element in its <dd>."""
    return dict(
        re.findall(r"<dt>([^<]+)</dt><dd>(<time .*?</time>)", content.replace("\xa0", " "))
    )


def test_connections_page_says_when_relative_and_exact(client, django_user_model, time_machine):
    time_machine.move_to(NOW, tick=False)
    user = django_user_model.objects.create_user("ruth")
    make_association(user, "uid_ruth", expires_in=42 * 60, refreshed_ago=3 * 3600)
    client.force_login(user)

    facts = _time_elements(client.get("/connections/").content.decode())

    assert facts["Token expires"] == (
        '<time class="moment" datetime="2026-03-12T01:47:00Z" title="12 Mar 2026, 01:47 UTC" '
        'data-past-prefix="expired "><span class="moment-relative">in 42 minutes</span> '
        '<span class="moment-absolute">12 Mar 2026, 01:47 UTC</span></time>'
    )
    assert 'datetime="2026-03-11T22:05:00Z"' in facts["Last refreshed"]
    assert ">3 hours ago<" in facts["Last refreshed"]
    assert 'datetime="2026-03-12T01:05:00Z"' in facts["Connected since"]
    assert ">just now<" in facts["Connected since"]

    # Three days on, the same page says so; an expired token of an active connection is
    # renewed when next used, and the page says that too.
    time_machine.move_to(NOW + timedelta(days=3), tick=False)
    content = client.get("/connections/").content.decode()
    facts = _time_elements(content)
    assert ">expired 2 days ago<" in facts["Token expires"]
    assert ">3 days ago<" in facts["Connected since"]
    assert "Renewed on next use." in content


def test_never_refreshed_says_not_yet(client, django_user_model, time_machine):
    time_machine.move_to(NOW, tick=False)
    user = django_user_model.objects.create_user("sam")
    make_association(user, "uid_sam")
    client.force_login(user)
    content = client.get("/connections/").content.decode()
    assert "<dt>Last refreshed</dt><dd>not yet</dd>" in content


def test_admin_times_are_time_elements(admin_client, django_user_model, time_machine):
    time_machine.move_to(NOW, tick=False)
    user = django_user_model.objects.create_user("tess")
    association, _ = make_association(user, "uid_tess", expires_in=-3 * 3600 - 30)
    record_event(association, CredentialEvent.Kind.CONNECTED)

    listing = admin_client.get("/admin/social_django/usersocialauth/").content.decode()
    assert (
        '<time class="moment" datetime="2026-03-11T22:04:30Z" title="11 Mar 2026, 22:04 UTC" '
        'data-past-prefix="expired "><span class="moment-relative">expired 3\xa0hours ago</span>'
        "</time>"
    ) in listing
    assert '<script src="/static/js/moments.js" defer></script>' in listing

    change = admin_client.get(
        f"/admin/social_django/usersocialauth/{association.pk}/change/"
    ).content.decode()
    assert '<span class="moment-absolute">11 Mar 2026, 22:04 UTC</span>' in change
    assert '<script src="/static/js/moments.js" defer></script>' in change

    events = admin_client.get("/admin/integrations/credentialevent/").content.decode()
    assert 'datetime="2026-03-12T01:05:00Z"' in events and ">just now<" in events
