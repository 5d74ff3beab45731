"""Disconnecting in Debian's chromium, on a phone and a desktop width: a revocation the
provider confirms says so; one it does not confirm says that, and its link opens the
provider's page of connected apps, where the person ends the access by hand."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from social_django.models import UserSocialAuth

from tests.conftest import save_screenshot
from tests.csp_watch import watch_csp
from tests.test_journey_browser import ARTIFACTS, allow_at_provider, browser_page, db  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DEAD_PORT = "http://127.0.0.1:9/revoke"  # nothing listens on the discard port
PASSWORD = "correct-horse-battery"


def shot(page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def log_in_with_password(page, live_server) -> None:
    db(lambda: get_user_model().objects.create_user("dora", password=PASSWORD))
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "dora")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/connections/")


def disconnect(page, live_server) -> None:
    page.get_by_role("link", name="Disconnect").click()
    page.get_by_role("button", name="Yes, disconnect").click()
    page.wait_for_url(f"{live_server.url}/connections/")


@pytest.mark.parametrize("width", [390, 1280])
def test_disconnect_tells_what_happened_at_the_provider(
    browser_page, live_server, provider, settings, width  # noqa: F811
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 844})
    csp_violations = watch_csp(page.context)
    provider.add_redirect_uri("custodian-demo", f"{live_server.url}/complete/demo/")
    log_in_with_password(page, live_server)

    # Connected, then disconnected: the provider confirms the revocation.
    page.get_by_role("button", name="Connect Demo provider").click()
    allow_at_provider(page, sign_in=True)
    page.wait_for_url(f"{live_server.url}/connections/")
    disconnect(page, live_server)
    message = page.locator(".message")
    assert message.inner_text() == (
        "Demo provider account alice was disconnected, and its access was revoked at "
        "Demo provider."
    )
    assert "success" in (message.get_attribute("class") or "")
    assert provider.stats()["revoke_calls"] == 1
    shot(page, f"disconnect-revoked-{width}")

    # Connected again; now the provider cannot be reached for the revocation.
    page.get_by_role("button", name="Connect Demo provider").click()
    allow_at_provider(page, sign_in=False)
    page.wait_for_url(f"{live_server.url}/connections/")
    settings.CUSTODIAN_PROVIDERS["demo"]["revocation_url"] = DEAD_PORT
    disconnect(page, live_server)
    message = page.locator(".message")
    assert message.inner_text().startswith(
        "Disconnected here; Demo provider did not confirm the revocation."
    )
    assert "warning" in (message.get_attribute("class") or "")
    link = message.get_by_role("link", name="Demo provider's page of connected apps")
    assert link.get_attribute("href") == f"{provider.base_url}/apps/"
    assert not db(lambda: UserSocialAuth.objects.exists())
    shot(page, f"disconnect-not-confirmed-{width}")

    # The link opens the provider's page, where the grant is still alive: remove it there.
    with page.context.expect_page() as opened:
        link.click()
    apps = opened.value
    apps.set_viewport_size({"width": width, "height": 844})
    apps.wait_for_load_state()
    # (alice may have given other clients access in earlier tests: this provider is shared.)
    demo_client = apps.locator(".apps li", has_text="Custodian (demo client)")
    assert demo_client.is_visible()
    shot(apps, f"provider-connected-apps-{width}")
    demo_client.get_by_role("button", name="Remove access").click()
    assert apps.get_by_text("Removed Custodian (demo client): its access has ended.").is_visible()
    assert apps.locator(".apps li", has_text="Custodian (demo client)").count() == 0
    shot(apps, f"provider-access-removed-{width}")
    apps.close()

    assert csp_violations == []
