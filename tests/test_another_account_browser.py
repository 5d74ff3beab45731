"""Connecting a second demo-provider account in Debian's chromium, on a phone and a desktop
width: alice is connected; "Connect another" while still signed in at the provider brings
alice back and the site says so; the site's link opens the provider's sign-out page (which
asks first), its home page then says nobody is signed in, and "Connect another" now asks who
you are: bob. The user ends with two associations, alice's and bob's."""

from __future__ import annotations

import pytest
from social_django.models import UserSocialAuth

from tests.conftest import save_screenshot
from tests.csp_watch import watch_csp
from tests.test_journey_browser import ARTIFACTS, allow_at_provider, browser_page, db  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ANOTHER = "Connect another Demo provider account"


def shot(page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


@pytest.mark.parametrize("width", [390, 1280])
def test_connect_another_demo_account_after_signing_out_there(
    browser_page, live_server, provider, width  # noqa: F811
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 844})
    csp_violations = watch_csp(page.context)
    provider.add_redirect_uri("custodian-demo", f"{live_server.url}/complete/demo/")

    # Log in with the provider as alice: the site offers another account, and says how.
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("button", name="Log in with Demo provider").click()
    allow_at_provider(page, sign_in=True)
    page.get_by_role("button", name="Create a new account").click()  # new here
    page.wait_for_url(f"{live_server.url}/connections/")
    offer = page.locator('li.another[data-provider="demo"]')
    assert offer.get_by_role("button", name=ANOTHER).is_visible()
    assert offer.locator(".note").inner_text() == (
        "Demo provider links the account you are signed in to there. To connect a different "
        "one, sign out at Demo provider first."
    )
    shot(page, f"another-1-offered-{width}")

    # Still signed in at the provider: it hands back alice, and the site says so.
    page.get_by_role("button", name=ANOTHER).click()
    allow_at_provider(page, sign_in=False)
    page.wait_for_url(f"{live_server.url}/connections/")
    message = page.locator(".message")
    assert message.inner_text().startswith(
        "Demo provider account alice is already connected, so nothing was added."
    )
    assert page.locator("li.account").count() == 1
    shot(page, f"another-2-same-account-{width}")

    # The link opens the provider's sign-out page, which asks before signing out.
    with page.context.expect_page() as opened:
        offer.get_by_role("link", name="sign out at Demo provider").click()
    at_provider = opened.value
    at_provider.set_viewport_size({"width": width, "height": 844})
    at_provider.wait_for_load_state()
    assert at_provider.url == f"{provider.base_url}/logout/"
    assert at_provider.get_by_role("heading", name="Sign out of Demo provider?").is_visible()
    shot(at_provider, f"provider-sign-out-{width}")
    # Its home page says who is signed in, and leads back to the sign-out page.
    at_provider.get_by_role("link", name="Home", exact=True).click()
    assert at_provider.locator(".status").inner_text() == "You are signed in as alice."
    shot(at_provider, f"provider-home-signed-in-{width}")
    at_provider.get_by_role("link", name="Sign out (alice)").click()
    at_provider.get_by_role("button", name="Sign out").click()
    assert at_provider.get_by_role("heading", name="Signed out").is_visible()
    shot(at_provider, f"provider-signed-out-{width}")
    at_provider.get_by_role("link", name="Demo provider home").click()
    assert at_provider.get_by_text("You are not signed in.").is_visible()
    shot(at_provider, f"provider-home-{width}")
    at_provider.close()

    # Now the provider asks who you are: bob.
    page.get_by_role("button", name=ANOTHER).click()
    page.fill("#id_username", "bob")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    assert page.locator(".message").inner_text() == "Demo provider account bob is connected."
    assert page.locator("li.account").count() == 2
    shot(page, f"another-3-two-accounts-{width}")

    owners = db(lambda: sorted(UserSocialAuth.objects.values_list("user_id", "uid")))
    assert [uid for _, uid in owners] == ["user_alice", "user_bob"]
    assert owners[0][0] == owners[1][0]  # one user of the site, two provider accounts
    assert csp_violations == []
