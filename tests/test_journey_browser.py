"""A person's whole journey in Debian's chromium: log in with the provider, use the account,
lose it, reconnect, disconnect — asserting on what the pages say at each step."""

from __future__ import annotations

from pathlib import Path

import pytest
from social_django.models import UserSocialAuth

from tests.browser import launch
from tests.conftest import expire_locally, save_screenshot
from tests.csp_watch import prove_watch_works, watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture
def browser_page(chromium: str):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        yield page
        browser.close()


def db(work):
    """Run ORM work in its own thread and close its connection.

    Inside Playwright's event loop Django would open a connection in another context, which
    then outlives the test and keeps PostgreSQL from dropping the test database.
    """
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run():
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def shot(page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"journey-{name}.png")


def allow_at_provider(page, *, sign_in: bool) -> None:
    if sign_in:
        page.fill("#id_username", "alice")
        page.fill("#id_password", "demo")
        page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()


def test_whole_journey(browser_page, live_server, provider):
    page = browser_page
    csp_violations = watch_csp(page.context)
    provider.add_redirect_uri("custodian-demo", f"{live_server.url}/complete/demo/")

    # Log in with the provider.
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("button", name="Log in with Demo provider").click()
    allow_at_provider(page, sign_in=True)
    page.wait_for_url(f"{live_server.url}/account/choose/")
    page.get_by_role("button", name="Create a new account").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    assert "Demo provider account" in page.content() and "is connected" in page.content()
    card = page.locator("li.account")
    assert card.locator(".badge").inner_text() == "Active"
    shot(page, "1-connected")

    # Its token expires; Try it refreshes transparently.
    association = db(lambda: UserSocialAuth.objects.get(provider="demo"))
    db(lambda: expire_locally(association))
    page.get_by_role("button", name="Try it").click()
    assert "HTTP 200" in page.content()
    assert '"user_id": "user_alice"' in page.locator(".try-result pre").inner_text()
    assert provider.stats()["token_calls"]["refresh_token"] == 1
    shot(page, "2-try-it")

    # The grant is revoked at the provider: the page says so and offers to reconnect.
    provider.revoke_grant("alice")
    db(lambda: expire_locally(association))
    page.get_by_role("button", name="Try it").click()
    assert "no longer accepts this connection" in page.content()
    assert page.locator("li.account .badge").inner_text() == "Needs reconnect"
    shot(page, "3-needs-reconnect")

    # Reconnect: the same association becomes active again.
    page.get_by_role("button", name="Reconnect").click()
    allow_at_provider(page, sign_in=False)
    page.wait_for_url(f"{live_server.url}/connections/")
    assert page.locator("li.account .badge").inner_text() == "Active"
    assert db(lambda: UserSocialAuth.objects.count()) == 1
    shot(page, "4-reconnected")

    # Disconnect: the site asks first; the only login method needs a password before.
    page.get_by_role("link", name="Disconnect").click()
    assert "only way you log in" in page.content()
    page.get_by_role("link", name="Set a password").click()
    page.fill("#id_new_password1", "correct-horse-battery")
    page.fill("#id_new_password2", "correct-horse-battery")
    page.get_by_role("button", name="Save password").click()
    assert "Your password is set" in page.content()
    page.get_by_role("link", name="Disconnect").click()
    shot(page, "5-confirm-disconnect")
    page.get_by_role("button", name="Yes, disconnect").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    assert "was disconnected" in page.content()
    assert "You have not connected any account yet" in page.content()
    assert not db(lambda: UserSocialAuth.objects.exists())
    assert provider.stats()["revoke_calls"] == 1
    shot(page, "6-disconnected")

    # The Content-Security-Policy let every page, stylesheet and form of the journey through,
    # the login forms' redirects to the provider included.
    assert csp_violations == []
    # site.css still applies (a blocked stylesheet would leave the bar a plain block).
    bar_display = page.evaluate("() => getComputedStyle(document.querySelector('.bar')).display")
    assert bar_display == "flex"
    prove_watch_works(page, csp_violations)
