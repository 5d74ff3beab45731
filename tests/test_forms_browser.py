"""The forms a person meets, in Debian's chromium on a desktop and a phone width: a password
the validators refuse, the disconnect confirmation, and logging out.

What is checked is what the eye and a screen reader get: the error is red, boxed, marked with
an icon and announced (role="alert", the input aria-invalid and described by it), while the
help text stays grey; the confirmation's two buttons stand apart and inside the screen; after
logging out the page says so. Screenshots: tests/artifacts/forms-*-{1280,390}.png.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import launch
from tests.conftest import save_screenshot
from tests.csp_watch import prove_watch_works, watch_csp
from tests.test_journey_browser import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RED, GREY = "rgb(179, 38, 30)", "rgb(91, 100, 117)"  # site.css: --bad, --muted
MIN_GAP = 12  # px between the confirmation's buttons, side by side or stacked


def shot(page: Any, name: str, width: int) -> None:
    save_screenshot(page, ARTIFACTS / f"forms-{name}-{width}.png")


def style(locator: Any, prop: str, pseudo: str | None = None) -> str:
    return locator.evaluate(
        "(el, [prop, pseudo]) => getComputedStyle(el, pseudo).getPropertyValue(prop)",
        [prop, pseudo],
    )


def gap_between(first: dict[str, float], second: dict[str, float]) -> float:
    """The clear space between two boxes: across if side by side, down if stacked."""
    if second["y"] >= first["y"] + first["height"]:
        return second["y"] - (first["y"] + first["height"])
    return second["x"] - (first["x"] + first["width"])


@pytest.mark.parametrize("width", [1280, 390])
def test_password_error_disconnect_confirmation_and_logout(
    chromium, live_server, connected, client, width
):
    # The database work comes first: Playwright's event loop owns this thread afterwards.
    _, association = connected("demo")
    session_cookie = client.cookies["sessionid"].value

    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            context = browser.new_context(viewport={"width": width, "height": 900})
            context.add_cookies(
                [{"name": "sessionid", "value": session_cookie, "url": live_server.url}]
            )
            csp_violations = watch_csp(context)
            page = context.new_page()

            # A password the validators refuse: the errors read as errors, not as help.
            page.goto(f"{live_server.url}/account/password/")
            page.fill("#id_new_password1", "demo")
            page.fill("#id_new_password2", "demo")
            page.get_by_role("button", name="Save password").click()
            errors = page.locator("#id_new_password2_error")
            expect(errors).to_contain_text("This password is too short")
            expect(page.get_by_role("alert")).to_contain_text("This password is too common")
            field = page.locator("#id_new_password2")
            expect(field).to_have_attribute("aria-invalid", "true")
            described = (field.get_attribute("aria-describedby") or "").split()
            assert "id_new_password2_error" in described, described
            expect(page.locator("#id_new_password1")).not_to_have_attribute("aria-invalid", "true")
            help_text = page.locator("#id_new_password1_helptext")
            expect(help_text).to_contain_text("at least 8 characters")
            assert style(errors, "color") == RED and style(help_text, "color") == GREY
            assert style(errors, "background-color") != style(help_text, "background-color")
            assert style(errors, "border-left-color") == RED
            assert style(errors.locator("li").first, "content", "::before") == '"!"'
            assert style(field, "border-top-color") == RED
            assert style(errors, "font-weight") == "600" != style(help_text, "font-weight")
            shot(page, "password-error", width)

            page.fill("#id_new_password1", "correct-horse-battery")
            page.fill("#id_new_password2", "correct-horse-battery")
            page.get_by_role("button", name="Save password").click()
            expect(page.locator(".message.success")).to_contain_text("Your password is set")

            # The disconnect confirmation: its two answers apart, inside the screen.
            page.goto(f"{live_server.url}/connections/{association.pk}/disconnect/")
            yes = page.get_by_role("button", name="Yes, disconnect")
            cancel = page.get_by_role("link", name="Cancel")
            first, second = yes.bounding_box(), cancel.bounding_box()
            assert first and second
            assert gap_between(first, second) >= MIN_GAP, (first, second)
            for box in (first, second):
                assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
                assert box["height"] >= 36, box  # a finger-sized target
            stacked = second["y"] >= first["y"] + first["height"]
            assert stacked == (width < 480), (first, second)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, overflow
            shot(page, "confirm-disconnect", width)

            # Cancel keeps the account; logging out says it happened.
            cancel.click()
            page.wait_for_url(f"{live_server.url}/connections/")
            page.get_by_role("button", name="Log out").click()
            page.wait_for_url(f"{live_server.url}/")
            expect(page.locator(".message.success")).to_have_text("You have logged out.")
            expect(page.get_by_role("link", name="Log in").first).to_be_visible()
            shot(page, "logged-out", width)
            page.reload()  # said once, not on every page after
            expect(page.locator(".message")).to_have_count(0)

            assert csp_violations == [], csp_violations
            prove_watch_works(page, csp_violations)
        finally:
            browser.close()
