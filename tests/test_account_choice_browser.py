"""In Debian's chromium, on a phone and a desktop width: alice makes her account with the demo
provider, sets a password, disconnects the provider, logs out, and logs in with it again —
the site asks, and her password links the provider account back to her account instead of
making a second one. Bob links through a provider already linked to his account."""

from __future__ import annotations

import pytest
from social_django.models import UserSocialAuth

from integrations.models import User
from tests.conftest import save_screenshot
from tests.csp_watch import watch_csp
from tests.test_journey_browser import ARTIFACTS, browser_page, db  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


def shot(page, name: str, width: int) -> None:
    save_screenshot(page, ARTIFACTS / f"account-choice-{name}-{width}.png")


def through_provider(page, username: str) -> None:
    """Sign in at the provider if it asks, and allow access if it asks."""
    page.wait_for_load_state()
    if page.locator("#id_password").count():
        page.fill("#id_username", username)
        page.fill("#id_password", "demo")
        page.get_by_role("button", name="Sign in").click()
    allow = page.get_by_role("button", name="Allow")
    if allow.count():
        allow.click()


def logged_in_as(page) -> str:
    return page.locator(".bar button.link").inner_text()


@pytest.mark.parametrize("width", [390, 1280])
def test_alice_links_the_provider_back_with_her_password(
    browser_page, live_server, provider, width  # noqa: F811
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 844})
    csp_violations = watch_csp(page.context)
    provider.add_redirect_uri("custodian-demo", f"{live_server.url}/complete/demo/")
    choose_url = f"{live_server.url}/account/choose/"

    # First visit: the provider account is new here; "Create a new account" is the main way.
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("button", name="Log in with Demo provider").click()
    through_provider(page, "alice")
    page.wait_for_url(choose_url)
    assert page.locator(".lead").inner_text().startswith("Demo provider account alice (user_alice)")
    assert db(lambda: User.objects.count()) == 0
    shot(page, "1-new-here", width)
    page.get_by_role("button", name="Create a new account").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    assert logged_in_as(page) == "Log out (alice)"  # a readable name, no hash

    # A password, then the provider goes.
    page.get_by_role("link", name="Password").click()
    page.fill("#id_new_password1", PASSWORD)
    page.fill("#id_new_password2", PASSWORD)
    page.get_by_role("button", name="Save password").click()
    page.get_by_role("link", name="Disconnect").click()
    page.get_by_role("button", name="Yes, disconnect").click()
    assert "You have not connected any account yet" in page.content()
    page.get_by_role("button", name="Log out (alice)").click()

    # Later: "Log in with Demo provider" again. The site asks instead of making alice2.
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("button", name="Log in with Demo provider").click()
    through_provider(page, "alice")
    page.wait_for_url(choose_url)
    page.fill("#id_username", "alice")
    page.fill("#id_password", "not-her-password")
    page.get_by_role("button", name="Log in and link").click()
    assert "Please enter a correct username and password" in page.content()
    shot(page, "2-wrong-password", width)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in and link").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    assert "Demo provider account alice is connected" in page.content()
    assert logged_in_as(page) == "Log out (alice)"
    shot(page, "3-linked", width)

    association = db(lambda: UserSocialAuth.objects.select_related("user").get())
    assert association.uid == "user_alice" and association.user.username == "alice"
    assert db(lambda: User.objects.count()) == 1
    assert csp_violations == []


@pytest.mark.parametrize("width", [390, 1280])
def test_bob_links_through_a_provider_already_linked(
    browser_page, live_server, provider, width  # noqa: F811
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 844})
    csp_violations = watch_csp(page.context)
    for client_id, backend in (("custodian-demo", "demo"), ("custodian-monzo", "monzo")):
        provider.add_redirect_uri(client_id, f"{live_server.url}/complete/{backend}/")
    choose_url = f"{live_server.url}/account/choose/"

    # Bob's account here was made with Monzo (access approved in its app).
    provider.approve("bob")
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("button", name="Log in with Monzo").click()
    through_provider(page, "bob")
    page.wait_for_url(choose_url)
    page.get_by_role("button", name="Create a new account").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    page.get_by_role("button", name="Log out").click()

    # The demo provider is new here: he logs in with Monzo from the choice page.
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("button", name="Log in with Demo provider").click()
    through_provider(page, "bob")
    page.wait_for_url(choose_url)
    page.get_by_role("button", name="Log in with Monzo").click()
    through_provider(page, "bob")
    page.wait_for_url(choose_url)
    assert "Link it to your account user_bob?" in page.locator("main").inner_text()
    shot(page, "4-confirm-link", width)
    page.get_by_role("button", name="Link it and continue").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    assert page.locator("li.account").count() == 2
    shot(page, "5-both-linked", width)

    owners = db(lambda: set(UserSocialAuth.objects.values_list("user__username", flat=True)))
    assert owners == {"user_bob"}
    assert db(lambda: User.objects.count()) == 1
    assert csp_violations == []
