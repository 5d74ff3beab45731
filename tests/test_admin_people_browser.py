"""The admin, round 2, in Debian's chromium: the index's sections, the associations list and
the credential events at 1280 pixels without horizontal scrolling, a user's connected
accounts, and "Connect an account" picking the user by autocomplete.

Screenshots (tests/artifacts/, git-ignored), each at 1280 and 390 pixels wide:
admin-index-*, admin-associations-*, admin-user-accounts-*, admin-connect-autocomplete-*,
admin-credential-events-*.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from playwright.sync_api import expect, sync_playwright

from integrations.models import CredentialEvent
from integrations.store.history import record_event
from tests.conftest import save_screenshot
from tests.csp_watch import prove_watch_works, watch_csp
from tests.test_admin import make_association

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
LIST_URL = "/admin/social_django/usersocialauth/"
EVENTS_URL = "/admin/integrations/credentialevent/"
WIDTHS = (1280, 390)

# People with long names, long e-mail addresses and long account ids: the widths to fit.
# Each account: (provider, uid, make_association's options).
PEOPLE: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "alexandra.montgomery": [
        ("demo", "user_alexandra.montgomery", {"expires_in": 42 * 60}),
        (
            "monzo",
            "user_00009AbCdEfGhIjKlMnOpQrStU",
            {"expires_in": -3 * 3600, "refreshed_ago": 5 * 3600},
        ),
    ],
    "bartholomew.oyelaran-fitzgerald": [
        ("demo", "109876543210987654321", {"expires_in": 4 * 60, "refreshed_ago": 600}),
    ],
    "chen.wei": [("demo", "user_chen.wei", {"expires_in": 7200, "status": "reauth_required"})],
    "dora": [("monzo", "user_dora", {"expires_in": 6 * 3600, "status": "awaiting_approval"})],
}
DETAILS = [
    (CredentialEvent.Kind.CONNECTED, ""),
    (CredentialEvent.Kind.REFRESHED, ""),
    (
        CredentialEvent.Kind.REFRESH_FAILED,
        "invalid_grant: The refresh token is invalid, expired, revoked, or was issued to "
        "another client",
    ),
    (CredentialEvent.Kind.REVOKED, "revocation failed (the provider refused); disconnected anyway"),
]


def fits(page, *selectors: str) -> dict[str, tuple[int, int]]:
    """The document's and each element's (scroll width, visible width) where they overflow."""
    measured = page.evaluate(
        """(selectors) => {
            const out = {document: [document.documentElement.scrollWidth, window.innerWidth]};
            for (const s of selectors) {
                const e = document.querySelector(s);
                if (e) out[s] = [e.scrollWidth, e.clientWidth];
            }
            return out;
        }""",
        list(selectors),
    )
    return {name: (scroll, seen) for name, (scroll, seen) in measured.items() if scroll > seen}


def shoot(page, name: str, width: int) -> None:
    save_screenshot(page, ARTIFACTS / f"admin-{name}-{width}.png")


@pytest.fixture
def admin_data(django_user_model):
    root = django_user_model.objects.create_superuser(
        "root", "root@example.org", "a-long-password-1"
    )
    helpdesk = django_user_model.objects.create_user(
        "helpdesk", "helpdesk@example.org", "a-long-password-1", is_staff=True
    )
    helpdesk.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "add_usersocialauth",
                "view_usersocialauth",
                "view_user",
                "change_user",
                "view_credentialevent",
            ]
        )
    )
    django_user_model.objects.create_superuser("rootette", "rootette@example.org")
    people = {}
    for username, accounts in PEOPLE.items():
        person = django_user_model.objects.create_user(
            username, f"{username}@example.org", first_name=username.split(".")[0].title()
        )
        people[username] = person
        for provider, uid, options in accounts:
            association, _ = make_association(person, uid, provider=provider, **options)
            for kind, detail in DETAILS:
                actor = root if kind == CredentialEvent.Kind.REVOKED else person
                record_event(association, kind, actor=actor, detail=detail)
    record_event(
        association, CredentialEvent.Kind.DISCONNECTED, actor=root, detail="from the admin"
    )
    return root, helpdesk, people


def session_of(user) -> str:
    """A session cookie for `user`, made before the browser starts (no database work inside
    Playwright's event loop: see tests/test_admin_browser.py)."""
    session = Client()
    session.force_login(user)
    return session.cookies["sessionid"].value


def logged_in(browser, live_server, session: str, width: int):
    context = browser.new_context(
        viewport={"width": width, "height": 900}, locale="en-GB", timezone_id="Pacific/Auckland"
    )
    context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    return context


def test_admin_pages_fit_and_read_well(live_server, admin_data):
    root, helpdesk, people = admin_data
    alexandra = people["alexandra.montgomery"]
    sessions = {"root": session_of(root), "helpdesk": session_of(helpdesk)}
    ARTIFACTS.mkdir(exist_ok=True)
    overflow: dict[str, dict] = {}

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            for width in WIDTHS:
                context = logged_in(browser, live_server, sessions["root"], width)
                csp_violations = watch_csp(context)
                page = context.new_page()

                page.goto(f"{live_server.url}/admin/")
                section = page.locator("#content-main .app-integrations")
                expect(section.locator("caption")).to_have_text("Connected accounts")
                expect(section.get_by_role("link", name="Associations")).to_have_attribute(
                    "href", LIST_URL
                )
                expect(page.locator("#content-main")).not_to_contain_text("Python Social Auth")
                overflow[f"index-{width}"] = fits(page)
                shoot(page, "index", width)

                page.goto(f"{live_server.url}{LIST_URL}")
                expect(page.locator("#result_list tbody tr")).to_have_count(5)
                # Times are the reader's (Auckland's), in the tooltip of each relative phrase.
                expiry = page.locator("#result_list td.field-expires_in time.moment").first
                expect(expiry).to_have_attribute("title", re.compile(r"\d{2}:\d{2} (GMT|NZ)"))
                overflow[f"associations-{width}"] = fits(page, "#changelist .results")
                shoot(page, "associations", width)

                page.goto(f"{live_server.url}{EVENTS_URL}")
                expect(page.locator("#result_list")).to_contain_text("invalid_grant")
                overflow[f"events-{width}"] = fits(page, "#changelist .results")
                shoot(page, "credential-events", width)

                page.goto(f"{live_server.url}/admin/integrations/user/{alexandra.pk}/change/")
                accounts = page.locator("#social_auth-group")
                expect(accounts.locator("tbody tr.has_original")).to_have_count(2)
                overflow[f"user-{width}"] = fits(page, "#social_auth-group table")
                shoot(page, "user-accounts", width)

                assert csp_violations == [], csp_violations
                context.close()

                # Connecting for someone: the helpdesk searches, and only sees whom it may act for.
                context = logged_in(browser, live_server, sessions["helpdesk"], width)
                csp_violations = watch_csp(context)
                page = context.new_page()
                page.goto(f"{live_server.url}{LIST_URL}add/")
                page.locator(".field-user .select2-selection").click()
                # Everyone's address has an "o" (example.org), the superusers' too: they are
                # not listed, since the helpdesk may not act for them.
                page.locator(".select2-search__field").fill("o")
                options = page.locator(".select2-results__option")
                expect(options.first).not_to_have_text("Searching…")
                shown = sorted(options.all_inner_texts())
                assert shown == sorted([*PEOPLE, "helpdesk"]), shown
                overflow[f"connect-{width}"] = fits(page)
                shoot(page, "connect-autocomplete", width)
                assert csp_violations == [], csp_violations
                prove_watch_works(page, csp_violations)
                context.close()
        finally:
            browser.close()

    # At 1280 pixels nothing scrolls sideways, the lists' tables included; on a phone only the
    # lists' tables do (inside their own box, as Django's always have), never the page.
    assert {name: found for name, found in overflow.items() if found and "1280" in name} == {}
    assert {
        name: found["document"] for name, found in overflow.items() if "document" in found
    } == {}
