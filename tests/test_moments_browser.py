"""Times in the reader's time zone, in Debian's chromium: the connections page rendered by a
server in UTC, read in Auckland (static/js/moments.js)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from playwright.sync_api import expect, sync_playwright

from integrations.templatetags.moments import relative_phrase
from tests.conftest import save_screenshot
from tests.csp_watch import prove_watch_works, watch_csp
from tests.test_admin import make_association
from tests.test_moments import NOW, PHRASES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
AUCKLAND = ZoneInfo("Pacific/Auckland")


def local_text(moment) -> str:
    """How an en-GB reader in Auckland sees `moment` (without the zone's name, which ICU
    versions spell differently: "GMT+13", "NZDT")."""
    local = moment.astimezone(AUCKLAND)
    return f"{local.day} {local:%b %Y, %H:%M}"


def test_times_in_the_readers_time_zone(live_server, django_user_model, time_machine):
    # The server's clock stands still at NOW, and so does the browser's (page.clock).
    time_machine.move_to(NOW, tick=False)
    user = django_user_model.objects.create_user("ruth")
    make_association(user, "uid_ruth", expires_in=42 * 60, refreshed_ago=3 * 3600)
    session = Client()
    session.force_login(user)
    expires_at = NOW + timedelta(minutes=42)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900},
                timezone_id="Pacific/Auckland",
                locale="en-GB",
            )
            context.add_cookies(
                [
                    {
                        "name": "sessionid",
                        "value": session.cookies["sessionid"].value,
                        "url": live_server.url,
                    }
                ]
            )
            csp_violations = watch_csp(context)
            page = context.new_page()
            page.clock.install(time=NOW.timestamp() - 10)
            page.clock.pause_at(NOW.timestamp())
            page.goto(f"{live_server.url}/connections/")

            expiry = page.locator("dt:text-is('Token expires') + dd time.moment")
            expect(expiry.locator(".moment-relative")).to_have_text("in 42\xa0minutes")
            # The absolute time is Auckland's (13 hours ahead in March), shown and as tooltip.
            shown = expiry.locator(".moment-absolute")
            expect(shown).to_contain_text(local_text(expires_at))
            assert "14:47" in local_text(expires_at)
            assert "UTC" not in shown.inner_text()
            assert expiry.get_attribute("title") == shown.inner_text()
            assert expiry.get_attribute("datetime") == "2026-03-12T01:47:00Z"
            refreshed = page.locator("dt:text-is('Last refreshed') + dd time.moment")
            expect(refreshed.locator(".moment-absolute")).to_contain_text(
                local_text(NOW - timedelta(hours=3))
            )
            save_screenshot(page, ARTIFACTS / "connections-relative-times-1280.png")

            # The phrase stays true while the page is open: five minutes later, unreloaded.
            page.clock.fast_forward("05:00")
            expect(expiry.locator(".moment-relative")).to_have_text("in 37\xa0minutes")
            expect(refreshed.locator(".moment-relative")).to_have_text("3\xa0hours ago")

            # The script's phrases are the server's, to the boundary.
            for seconds, _ in PHRASES:
                moment = NOW + timedelta(seconds=seconds)
                for prefix in ("", "expired "):
                    script = page.evaluate(
                        "([m, n, p]) => window.CustodianMoments.phrase(m, n, p)",
                        [moment.timestamp() * 1000, NOW.timestamp() * 1000, prefix],
                    )
                    assert script == relative_phrase(moment, NOW, past_prefix=prefix), seconds

            page.set_viewport_size({"width": 390, "height": 844})
            page.reload()
            expect(shown).to_contain_text(local_text(expires_at))
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 390, width
            save_screenshot(page, ARTIFACTS / "connections-relative-times-390.png")

            assert csp_violations == [], csp_violations
            prove_watch_works(page, csp_violations)
        finally:
            browser.close()
