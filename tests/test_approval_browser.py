"""Connecting Monzo in Debian's chromium, on a desktop and a phone width: the page says it
waits for approval in the Monzo app; the person approves there, the background run
(`manage.py refresh_tokens`) notices, and a reload shows the account active. Nobody presses
"check again"."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from social_django.models import UserSocialAuth

from integrations import connection_approved
from tests.csp_watch import watch_csp
from tests.test_journey_browser import allow_at_provider, browser_page, db, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = (1280, 390)


def shots(page, name: str) -> None:
    """The page at each width, as it is now."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844})
        shot(page, f"{name}-{width}")


def refresh_tokens() -> str:
    out = io.StringIO()
    call_command("refresh_tokens", stdout=out)
    return out.getvalue()


def test_monzo_approval_in_the_app_is_noticed_without_a_button(
    browser_page, live_server, provider  # noqa: F811
):
    page = browser_page
    csp_violations = watch_csp(page.context)
    posted: list[str] = []
    page.on("request", lambda request: posted.append(f"{request.method} {request.url}"))
    approvals: list[str] = []

    def on_approved(sender, association, **kwargs) -> None:
        approvals.append(association.uid)

    connection_approved.connect(on_approved)
    provider.add_redirect_uri("custodian-monzo", f"{live_server.url}/complete/monzo/")
    try:
        # Connect Monzo: the site says what is left to do.
        page.goto(f"{live_server.url}/login/")
        page.get_by_role("button", name="Log in with Monzo").click()
        allow_at_provider(page, sign_in=True)
        page.get_by_role("button", name="Create a new account").click()  # new here
        page.wait_for_url(f"{live_server.url}/connections/")
        card = page.locator("li.account")
        assert card.locator(".badge").inner_text() == "Waiting for approval"
        assert "open the Monzo app and approve access" in page.locator(".messages").inner_text()
        assert "We check for your approval regularly" in card.inner_text()
        shots(page, "monzo-waiting")

        # Approved in the Monzo app; the background run notices.
        provider.approve("alice")
        summary = db(refresh_tokens)
        assert "1 awaiting approval: approved 1, still awaiting 0" in summary

        page.reload()
        card = page.locator("li.account")
        assert card.locator(".badge").inner_text() == "Active"
        assert card.locator(".account-name").inner_text() == "Alice's current account"
        assert page.get_by_role("button", name="Try it").is_visible()
        assert page.get_by_role("button", name="I've approved — check again").count() == 0
        shots(page, "monzo-approved")
    finally:
        connection_approved.disconnect(on_approved)

    assert approvals == ["user_alice"]
    assert not [sent for sent in posted if "/check/" in sent]  # no button pressed
    assert db(lambda: UserSocialAuth.objects.get(provider="monzo").extra_data["status"]) == "active"
    assert csp_violations == []
