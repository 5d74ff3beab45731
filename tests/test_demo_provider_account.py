"""The demo provider's pages for people, over real HTTP: its home page says what it is and
who is signed in, /logout/ asks before signing out (where the site sends people who want to
connect another account), /apps/ lists the apps given access and ends one's access."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

from tests.provider import LoopbackProvider
from tests.test_demo_provider import DEMO, TIMEOUT, api, connect, refresh


def sign_in(browser: requests.Session, provider: LoopbackProvider, username: str) -> None:
    login = browser.get(f"{provider.base_url}/login/?next=/", timeout=TIMEOUT)
    page = browser.post(
        f"{provider.base_url}/login/",
        timeout=TIMEOUT,
        data={
            "csrfmiddlewaretoken": browser.cookies["demo_provider_csrftoken"],
            "username": username,
            "password": "demo",
            "next": "/",
        },
    )
    assert login.status_code == 200
    assert urlsplit(page.url).path == "/", page.url


def post(browser: requests.Session, url: str, **data: str) -> requests.Response:
    token = browser.cookies["demo_provider_csrftoken"]
    return browser.post(url, data={"csrfmiddlewaretoken": token, **data}, timeout=TIMEOUT)


def test_home_says_what_it_is_and_who_is_signed_in(provider: LoopbackProvider) -> None:
    with requests.Session() as browser:
        anonymous = browser.get(f"{provider.base_url}/", timeout=TIMEOUT)
        assert anonymous.status_code == 200
        assert "stand-in OAuth" in anonymous.text
        assert "You are not signed in." in anonymous.text
        assert 'href="/login/?next=/"' in anonymous.text

        sign_in(browser, provider, "carol")
        home = browser.get(f"{provider.base_url}/", timeout=TIMEOUT)

    assert "You are signed in as <strong>carol</strong>." in home.text
    assert 'href="/logout/"' in home.text and 'href="/apps/"' in home.text


def test_sign_out_page_asks_then_signs_out(provider: LoopbackProvider) -> None:
    with requests.Session() as browser:
        nobody = browser.get(f"{provider.base_url}/logout/", timeout=TIMEOUT)
        assert (nobody.status_code, "You are not signed in" in nobody.text) == (200, True)

        sign_in(browser, provider, "bob")
        asking = browser.get(f"{provider.base_url}/logout/", timeout=TIMEOUT)
        assert asking.status_code == 200
        assert "Sign out of Demo provider?" in asking.text
        assert '<form method="post" action="/logout/">' in asking.text
        # GET alone signs nobody out.
        still = browser.get(f"{provider.base_url}/", timeout=TIMEOUT)
        assert "signed in as <strong>bob" in still.text

        done = post(browser, f"{provider.base_url}/logout/")
        home = browser.get(f"{provider.base_url}/", timeout=TIMEOUT)

    assert (done.status_code, "You are signed out of Demo provider" in done.text) == (200, True)
    assert "You are not signed in." in home.text


def test_sign_out_needs_the_csrf_token(provider: LoopbackProvider) -> None:
    with requests.Session() as browser:
        sign_in(browser, provider, "bob")
        forged = browser.post(f"{provider.base_url}/logout/", timeout=TIMEOUT)
        home = browser.get(f"{provider.base_url}/", timeout=TIMEOUT)

    assert forged.status_code == 403
    assert "signed in as <strong>bob" in home.text


def test_connected_apps_lists_and_removes_an_apps_access(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO, "carol")
    assert api(provider, "/ping/whoami", tokens["access_token"]).status_code == 200
    with requests.Session() as browser:
        assert urlsplit(browser.get(f"{provider.base_url}/apps/", timeout=TIMEOUT).url).path == (
            "/login/"
        )
        sign_in(browser, provider, "carol")
        listed = browser.get(f"{provider.base_url}/apps/", timeout=TIMEOUT)
        assert "Custodian (demo client)" in listed.text

        removed = post(browser, f"{provider.base_url}/apps/", client_id=DEMO.client_id)
        unknown = post(browser, f"{provider.base_url}/apps/", client_id="no-such-client")
        # Whatever else carol gave access to (earlier tests share this provider) goes too.
        page = removed
        for client_id in re.findall(r'name="client_id" value="([^"]+)"', removed.text):
            page = post(browser, f"{provider.base_url}/apps/", client_id=client_id)

    assert "Removed Custodian (demo client): its access has ended." in removed.text
    # Other clients carol gave access to in other tests (the provider is shared) stay.
    assert "<strong>Custodian (demo client)</strong>" not in removed.text
    assert unknown.status_code == 404
    assert "No app has access to your account." in page.text
    assert api(provider, "/ping/whoami", tokens["access_token"]).status_code == 401
    assert refresh(provider, DEMO, tokens["refresh_token"]).status_code == 400


def test_connected_apps_are_only_your_own(provider: LoopbackProvider) -> None:
    tokens = connect(provider, DEMO, "alice")
    with requests.Session() as browser:
        sign_in(browser, provider, "bob")
        post(browser, f"{provider.base_url}/apps/", client_id=DEMO.client_id)

    assert api(provider, "/ping/whoami", tokens["access_token"]).status_code == 200
