"""The association admin in a real browser (Debian's chromium through Playwright).

Screenshots land in tests/artifacts/ (git-ignored): admin-associations-list.png and
admin-association-change.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import expect, sync_playwright
from social_django.models import UserSocialAuth

from integrations.store.credentials import fingerprint, read_credentials
from tests.browser import launch
from tests.conftest import save_screenshot
from tests.csp_watch import prove_watch_works, watch_csp
from tests.test_admin import fast_password_hashing, make_association  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def test_list_and_change_page_in_a_browser(
    chromium, live_server, connected, django_user_model, provider
):
    # No database work inside the browser block: Playwright's sync API runs an event loop in
    # this thread (Django would refuse the query), and a query made there opens a connection in
    # Playwright's context that nothing closes (PostgreSQL then cannot drop the test database).
    _, real = connected("demo")
    specs: dict[str, dict[str, Any]] = {
        "acct_soon": {"expires_in": 5 * 60 + 30},
        "acct_expired": {"expires_in": -3 * 3600, "refreshed_ago": 4 * 3600},
        "acct_reauth": {"expires_in": 7200, "status": "reauth_required"},
    }
    for number, (uid, options) in enumerate(specs.items()):
        user = django_user_model.objects.create_user(
            f"person{number}", email=f"p{number}@example.org"
        )
        make_association(user, uid, **options)
    admin = django_user_model.objects.create_superuser(
        "root", "root@example.org", "a-long-password-1"
    )
    session = Client()
    session.force_login(admin)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
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
            page.goto(f"{live_server.url}/admin/social_django/usersocialauth/")

            rows = page.locator("#result_list tbody tr")
            expect(rows).to_have_count(4)
            badge = page.locator(".custodian-badge")
            expect(badge.filter(has_text="Reauth required")).to_have_count(1)
            expect(badge.filter(has_text="Expired but refreshable")).to_have_count(1)
            expect(badge.filter(has_text="Expiring soon")).to_have_count(1)
            expect(badge.filter(has_text="Active")).to_have_count(1)
            # The stylesheet is applied: the reauth badge is red, the active one green.
            colours = page.evaluate(
                "() => Object.fromEntries([...document.querySelectorAll('.custodian-badge')]"
                ".map(b => [b.textContent, getComputedStyle(b).backgroundColor]))"
            )
            assert colours["Reauth required"] == "rgb(179, 38, 30)", colours
            assert colours["Active"] == "rgb(30, 123, 68)", colours
            expect(page.locator("#result_list")).to_contain_text("expired 3")
            expect(page.get_by_role("link", name="Connect an account")).to_be_visible()
            save_screenshot(page, ARTIFACTS / "admin-associations-list.png")

            # Refresh the real association through the action, like an admin would.
            real_row = rows.filter(has_text="user_alice")
            real_row.locator("input.action-select").check()
            page.select_option("select[name=action]", "refresh_now")
            page.locator("#changelist-form .actions button[type=submit]").click()
            expect(page.locator(".messagelist")).to_contain_text("refreshed, new access token fp")

            rows.filter(has_text="user_alice").locator(".field-account_uid a").click()
            expect(page.locator("h1")).to_contain_text("Change association")
            change_page = page.content()
            history = page.locator("#credential_events-group")
            expect(history).to_contain_text("refreshed")
            expect(history).to_contain_text("connected")
            expect(page.locator(".custodian-json")).to_contain_text("•••••• (fp ")
            expect(page.get_by_role("button", name="Refresh now")).to_be_visible()
            save_screenshot(page, ARTIFACTS / "admin-association-change.png")

            # The revoke confirmation, the history, and connecting from the admin: its form is
            # answered with a redirect to the provider, which form-action must allow.
            page.get_by_role("link", name="Revoke and disconnect").click()
            expect(page.get_by_role("button", name="Yes, revoke and disconnect")).to_be_visible()
            page.goto(f"{live_server.url}/admin/integrations/credentialevent/")
            expect(page.locator("#result_list")).to_contain_text("Refreshed")
            page.goto(f"{live_server.url}/admin/social_django/usersocialauth/add/")
            page.select_option("#id_provider", "demo")
            page.locator(".field-user .select2-selection").click()
            page.locator(".select2-search__field").fill("person0")
            page.locator(".select2-results__option", has_text="person0").click()
            expect(page.locator(".field-user .select2-selection__rendered")).to_have_text(
                "person0"
            )
            page.get_by_role("button", name="Continue to the provider").click()
            page.wait_for_url(f"{provider.base_url}/**")

            # No page of the walk broke the Content-Security-Policy (Django's admin scripts
            # and styles are static files), and the admin's stylesheets still apply.
            assert csp_violations == [], csp_violations
            page.goto(f"{live_server.url}/admin/social_django/usersocialauth/")
            header = page.evaluate(
                "() => getComputedStyle(document.querySelector('#header')).display"
            )
            assert header == "flex", header
            assert csp_violations == [], csp_violations
            prove_watch_works(page, csp_violations)
        finally:
            browser.close()

    credentials = read_credentials(UserSocialAuth.objects.get(pk=real.pk).extra_data)
    assert f"fp {fingerprint(credentials.access_token)}" in change_page  # the refreshed token
    for secret in (credentials.access_token, credentials.refresh_token, "enc:"):
        assert secret not in change_page
    assert (ARTIFACTS / "admin-associations-list.png").stat().st_size > 10_000
    assert (ARTIFACTS / "admin-association-change.png").stat().st_size > 10_000
