"""A person logs in, in Debian's chromium, with a provider declared only by its OpenID Connect
issuer and with social-core's stock OpenID Connect backend, on a phone and a desktop width;
the pages show both with their titles, the CSP lets the discovered authorization page in."""

from __future__ import annotations

import pytest
from social_core.backends.open_id_connect import OpenIdConnectAuth

from tests.conftest import OIDC_CLIENT
from tests.csp_watch import watch_csp
from tests.test_journey_browser import allow_at_provider, browser_page, shot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [390, 1280])
def test_log_in_with_an_issuer_and_link_stock_openid_connect(
    browser_page, live_server, provider, settings, enable_backends, width  # noqa: F811
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 844})
    csp_violations = watch_csp(page.context)
    OpenIdConnectAuth.get_openid_configuration.invalidate()
    settings.CUSTODIAN_PROVIDERS = {
        **settings.CUSTODIAN_PROVIDERS,
        "idp": {"issuer": provider.base_url, "client_id": OIDC_CLIENT[0],
                "client_secret": OIDC_CLIENT[1], "title": "Example ID"},
    }
    settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = provider.base_url
    settings.SOCIAL_AUTH_OIDC_KEY, settings.SOCIAL_AUTH_OIDC_SECRET = OIDC_CLIENT
    settings.SOCIAL_AUTH_OIDC_USE_PKCE = True
    enable_backends(
        "backends.declared.idp", "social_core.backends.open_id_connect.OpenIdConnectAuth"
    )
    for name in ("idp", "oidc"):
        provider.add_redirect_uri(OIDC_CLIENT[0], f"{live_server.url}/complete/{name}/")

    page.goto(f"{live_server.url}/login/")
    assert page.get_by_role("button", name="Log in with OpenID Connect").is_visible()
    shot(page, f"oidc-login-{width}")
    page.get_by_role("button", name="Log in with Example ID").click()
    allow_at_provider(page, sign_in=True)
    # A provider account new to the site: a new account, or an existing one?
    page.wait_for_url(f"{live_server.url}/account/choose/")
    assert page.locator(".lead").inner_text().startswith("Example ID account Alice Demo")
    page.get_by_role("button", name="Create a new account").click()
    page.wait_for_url(f"{live_server.url}/connections/")
    assert page.locator(".bar button.link").inner_text() == "Log out (alice)"
    assert "Example ID account Alice Demo is connected" in page.content()

    # Link the same person's account through the stock backend as well.
    page.get_by_role("button", name="Connect OpenID Connect").click()
    allow_at_provider(page, sign_in=False)
    page.wait_for_url(f"{live_server.url}/connections/")
    cards = page.locator("li.account")
    assert cards.count() == 2
    assert [cards.nth(i).locator(".badge").inner_text() for i in range(2)] == ["Active"] * 2
    shot(page, f"oidc-connections-{width}")
    assert csp_violations == []
