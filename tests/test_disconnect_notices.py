"""A disconnect tells the person what happened at the provider: revoked there, not confirmed
(with the provider's page of connected apps, where its profile knows one), or not offered;
and nothing a declaration says can put markup into the page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib import messages
from social_django.models import UserSocialAuth

from backends.declaration import problems
from backends.profiles import registered
from backends.profiles.stock_code import GITHUB
from integrations.psa import notices
from integrations.psa.disconnect import (
    NO_REVOCATION,
    NOT_OFFERED,
    NOTHING_STORED,
    SKIPPED,
    Disconnected,
)
from tests.conftest import connect

pytestmark = pytest.mark.django_db

DEAD_PORT = "http://127.0.0.1:9/revoke"  # nothing listens on the discard port


class _Messages(HTMLParser):
    """The flashed messages of a page: each one's text, level and links (href, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict] = []
        self._in: dict | None = None
        self._link: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "li" and "message" in classes:
            self._in = {"level": classes[-1], "text": "", "links": []}
            self.messages.append(self._in)
        elif tag == "a" and self._in is not None:
            self._link = {**attributes, "text": ""}
            self._in["links"].append(self._link)
        elif self._in is not None:
            self._in["text"] += f"<{tag}>"  # any other element in a message is a leak

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._in = None
        elif tag == "a":
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._in["text"] += data
        if self._link is not None:
            self._link["text"] += data


def flashed(page: str) -> list[dict]:
    parser = _Messages()
    parser.feed(page)
    return parser.messages


@pytest.fixture
def linked(client, provider, django_user_model, settings):
    """A user with a password who linked the demo provider as alice; `linked(**declaration)`
    changes the demo declaration first."""

    def _link(**declaration):
        settings.CUSTODIAN_PROVIDERS["demo"].update(declaration)
        user = django_user_model.objects.create_user("dora", password="a-long-password-1")
        client.force_login(user)
        connect(client, provider, "demo")
        client.get("/connections/")  # shows (and so clears) "… is connected"
        return UserSocialAuth.objects.get(user=user)

    return _link


def test_a_confirmed_revocation_says_so(linked, client, provider):
    association = linked()

    page = client.post(f"/disconnect/demo/{association.pk}/", follow=True).content.decode()

    [message] = flashed(page)
    assert message["level"] == "success"
    assert message["text"] == (
        "Demo provider account alice was disconnected, and its access was revoked at "
        "Demo provider."
    )
    assert message["links"] == []
    assert provider.stats()["revoke_calls"] == 1


def test_a_failed_revocation_says_so_and_links_the_providers_page(
    linked, client, provider, settings
):
    association = linked()
    settings.CUSTODIAN_PROVIDERS["demo"]["revocation_url"] = DEAD_PORT

    page = client.post(f"/disconnect/demo/{association.pk}/", follow=True).content.decode()

    [message] = flashed(page)
    assert message["level"] == "warning"
    assert message["text"].startswith(
        "Disconnected here; Demo provider did not confirm the revocation."
    )
    assert "Account alice may still let this site in" in message["text"]
    [link] = message["links"]
    assert link["href"] == f"{provider.base_url}/apps/"
    assert link["text"] == "Demo provider's page of connected apps"
    assert (link["target"], link["rel"]) == ("_blank", "noopener noreferrer")
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_a_refused_revocation_without_a_page_names_the_settings(linked, client, settings):
    association = linked(connected_apps_url="")
    settings.CUSTODIAN_PROVIDERS["demo"]["revocation_url"] = DEAD_PORT

    page = client.post(f"/disconnect/demo/{association.pk}/", follow=True).content.decode()

    [message] = flashed(page)
    assert message["links"] == []
    assert message["text"].endswith(
        "remove this site's access in your Demo provider account's settings."
    )


def test_a_provider_without_revocation_says_so_and_links_its_page(linked, client, provider):
    association = linked(revocation_url="")

    page = client.post(f"/disconnect/demo/{association.pk}/", follow=True).content.decode()

    [message] = flashed(page)
    assert message["level"] == "info"
    assert message["text"].startswith(
        "Demo provider account alice was disconnected here. Demo provider offers no "
        "revocation"
    )
    assert [link["href"] for link in message["links"]] == [f"{provider.base_url}/apps/"]
    assert provider.stats()["revoke_calls"] == 0


def test_a_hostile_title_stays_text(linked, client, provider):
    title = '<script>alert("t")</script><img src=x onerror=alert(1)>'
    association = linked(title=title, revocation_url=DEAD_PORT)

    page = client.post(f"/disconnect/demo/{association.pk}/", follow=True).content.decode()

    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in page
    [message] = flashed(page)
    assert message["text"].startswith(f"Disconnected here; {title} did not confirm")
    [link] = message["links"]  # the only element in the message is ours
    assert link["text"] == f"{title}'s page of connected apps"
    assert link["href"] == f"{provider.base_url}/apps/"
    # And the connections page around it escapes the title too.
    assert "<script>alert" not in client.get("/connections/").content.decode()


def test_a_link_is_only_made_to_a_page_people_may_be_sent_to():
    for url in ("javascript:alert(1)", "data:text/html,x", "http://evil.example/", "//x.example"):
        assert notices.link(url, "x") is None
        assert notices.page_url(url) == ""
    assert notices.link("http://127.0.0.1:8001/apps/", "x") is not None
    assert problems("acme", {
        "authorization_url": "https://acme.example/authorize",
        "token_url": "https://acme.example/token",
        "api_base_url": "https://api.acme.example",
        "connected_apps_url": "http://localhost:8001/apps/",
        "sign_out_url": "http://127.0.0.1:8001/logout/",
    }) == []


@pytest.mark.parametrize(
    ("outcome", "level", "start"),
    [
        (Disconnected(True, ""), messages.SUCCESS, "Acme account ann was disconnected, and"),
        (Disconnected(False, "timeout"), messages.WARNING, "Disconnected here; Acme did not"),
        (Disconnected(None, "", NOTHING_STORED), messages.SUCCESS,
         "Acme account ann was disconnected. This site held no token for it"),
        (Disconnected(None, "", NO_REVOCATION), messages.INFO,
         "Acme account ann was disconnected here. Acme offers no revocation"),
        (Disconnected(None, "", NOT_OFFERED), messages.WARNING,
         "Acme account ann was disconnected here, but this site could not ask Acme"),
        (Disconnected(None, "", SKIPPED), messages.WARNING,
         "Acme account ann was disconnected here, but this site could not ask Acme"),
    ],
)
def test_each_outcome_has_its_sentence(outcome, level, start):
    got_level, text = notices.disconnected("Acme", "ann", outcome, "https://acme.example/apps")
    assert got_level == level
    assert text.startswith(start)
    links = text.count("<a ")
    assert links == (0 if outcome.revoked is True or outcome.not_tried == NOTHING_STORED else 1)


def test_a_provider_no_longer_offered_is_disconnected_with_its_profiles_page(
    client, django_user_model, provider
):
    """GitHub is not enabled here, but its profile still knows where its apps are."""
    user = django_user_model.objects.create_user("erin", password="a-long-password-1")
    association = UserSocialAuth.objects.create(
        user=user, provider="github", uid="4242", extra_data={"display_name": "octo-erin"}
    )
    client.force_login(user)

    confirm = client.get(f"/connections/{association.pk}/disconnect/").content.decode()
    assert f'href="{GITHUB.connected_apps_url}"' in confirm
    page = client.post(
        f"/connections/{association.pk}/disconnect/", follow=True
    ).content.decode()

    [message] = flashed(page)
    assert message["text"].startswith(
        "GitHub account octo-erin was disconnected here. GitHub is no longer offered"
    )
    assert [link["href"] for link in message["links"]] == [GITHUB.connected_apps_url]
    assert not UserSocialAuth.objects.filter(pk=association.pk).exists()


def test_the_shipped_profiles_name_pages_people_may_be_sent_to():
    """Every shipped page is https, and no account-chooser parameter replaces the protocol's."""
    profiles = registered()
    for name, profile in profiles.items():
        for url in (profile.connected_apps_url, profile.sign_out_url):
            assert not url or notices.page_url(url) == url, (name, url)
            assert not url or url.startswith("https://"), (name, url)
        assert not set(profile.select_account) & {"client_id", "redirect_uri", "state", "scope"}
    assert profiles["google-oauth2"].select_account == {"prompt": "select_account consent"}
    assert profiles["github"].connected_apps_url == "https://github.com/settings/applications"
    assert not profiles["monzo"].connected_apps_url  # in the Monzo app, not on the web
