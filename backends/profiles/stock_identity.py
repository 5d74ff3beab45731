"""Profiles of the identity-provider backends: Keycloak, Okta, Auth0, and any OpenID provider
(`oidc`). Their hosts are the site's (a realm, an org, a tenant), so URLs come from the
backend's settings rather than from constants."""

from __future__ import annotations

from typing import Any

from backends.profiles import Profile, Revocation

DAY = 86400
# Their hosts are the site's, so there is no fixed page of connected apps; and not all of
# them show an account chooser, but all of them re-authenticate on OpenID Connect's
# prompt=login, where the person can sign in as someone else.
SIGN_IN_AGAIN = {"prompt": "login"}
KEYCLOAK_TOKEN_PATH = "/protocol/openid-connect/token"


def keycloak_realm(backend: Any, data: Any = None) -> str:
    """The realm's URL (https://sso.example.com/realms/acme), read from the backend's
    SOCIAL_AUTH_KEYCLOAK_ACCESS_TOKEN_URL: the base of userinfo and the account API."""
    token_url = str(backend.access_token_url() or "").rstrip("/")
    if not token_url.endswith(KEYCLOAK_TOKEN_PATH):
        return ""
    return token_url.removesuffix(KEYCLOAK_TOKEN_PATH)


def keycloak_revoke_url(backend: Any) -> str:
    """the realm's /protocol/openid-connect/revoke"""
    realm = keycloak_realm(backend)
    return f"{realm}/protocol/openid-connect/revoke" if realm else ""


KEYCLOAK = Profile(
    name="keycloak",
    title="Keycloak",
    api_base_url=keycloak_realm,
    # RFC 7009 with the client's id and secret (the backend sends them in the body).
    revocation=Revocation(url=keycloak_revoke_url, hint=True, auth="post"),
    # Plain refresh tokens end with the SSO session (30 minutes idle by default); offline
    # tokens outlive it.
    scopes=("offline_access",),
    # Offline sessions end after 30 days idle by default.
    keepalive=7 * DAY,
    select_account=SIGN_IN_AGAIN,
    refresh=(
        "each refresh returns a new refresh token; the old one stays valid unless the realm "
        "revokes refresh tokens on use; offline tokens end after 30 days idle (default)"
    ),
    sources=(
        "https://www.keycloak.org/docs/latest/server_admin/#_offline-access",
        "https://www.keycloak.org/docs/latest/server_admin/#_timeouts",
        "https://www.keycloak.org/securing-apps/oidc-layers",
    ),
)


def okta_issuer(backend: Any, data: Any = None) -> str:
    """The authorization server the backend talks to (SOCIAL_AUTH_OKTA_..._API_URL, e.g.
    https://acme.okta.com/oauth2/default): the base of /v1/userinfo and the site's APIs."""
    return str(backend.api_url()).rstrip("/")


def okta_revoke_url(backend: Any) -> str:
    """the authorization server's /v1/revoke"""
    return f"{okta_issuer(backend)}/v1/revoke"


OKTA_SOURCES = (
    "https://developer.okta.com/docs/guides/refresh-tokens/main/",
    "https://developer.okta.com/docs/guides/revoke-tokens/main/",
    "https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/tag/OrgAS/#tag/OrgAS/"
    "operation/revoke",
)
OKTA_REFRESH = (
    "refresh tokens need offline_access and the Refresh Token grant; rotation is an app "
    "setting (30 s grace by default); the default policy keeps them while used every 7 days"
)


def okta_profile(name: str) -> Profile:
    """Okta's profile, the same for its OAuth 2.0 and its OpenID Connect backend."""
    return Profile(
        name=name,
        title="Okta",
        api_base_url=okta_issuer,
        revocation=Revocation(url=okta_revoke_url, hint=True, auth="post"),
        scopes=("offline_access",),
        keepalive=3 * DAY,
        select_account=SIGN_IN_AGAIN,
        refresh=OKTA_REFRESH,
        sources=OKTA_SOURCES,
    )


def auth0_tenant(backend: Any, data: Any = None) -> str:
    """https://{SOCIAL_AUTH_AUTH0_DOMAIN}: user info (/userinfo) and the tenant's APIs."""
    return str(backend.api_path()).rstrip("/")


def auth0_revoke_url(backend: Any) -> str:
    """https://{SOCIAL_AUTH_AUTH0_DOMAIN}/oauth/revoke"""
    return str(backend.api_path("oauth/revoke"))


AUTH0 = Profile(
    name="auth0",
    title="Auth0",
    api_base_url=auth0_tenant,
    # /oauth/revoke revokes refresh tokens only, with the client's credentials in a JSON body.
    revocation=Revocation(url=auth0_revoke_url, placement="json", auth="post"),
    scopes=("offline_access",),
    # Rotating refresh tokens expire after 15 days idle by default.
    keepalive=5 * DAY,
    select_account=SIGN_IN_AGAIN,
    refresh=(
        "refresh tokens need offline_access; rotation is optional, and with it reusing a spent "
        "refresh token revokes the whole family (403 invalid_grant); idle and absolute "
        "lifetimes are tenant settings"
    ),
    sources=(
        "https://auth0.com/docs/secure/tokens/refresh-tokens/revoke-refresh-tokens",
        "https://auth0.com/docs/secure/tokens/refresh-tokens/refresh-token-rotation",
        "https://auth0.com/docs/secure/tokens/refresh-tokens/configure-refresh-token-expiration",
    ),
)


def oidc_issuer(backend: Any, data: Any = None) -> str:
    """The OpenID provider's issuer URL (SOCIAL_AUTH_OIDC_OIDC_ENDPOINT)."""
    return str(backend.oidc_endpoint() or "").rstrip("/")


OIDC = Profile(
    name="oidc",
    title="OpenID Connect",
    api_base_url=oidc_issuer,
    # The discovery document's revocation_endpoint (RFC 7009), with the client
    # authentication the backend uses at the token endpoint.
    revocation=Revocation(hint=True, auth="backend"),
    # OpenID Connect Core §3.1.2.1: the provider asks which account to use.
    select_account={"prompt": "select_account"},
    refresh="as the provider issues them (RFC 6749 §6); a new refresh token replaces the old",
    sources=(
        "https://openid.net/specs/openid-connect-discovery-1_0.html",
        "https://www.rfc-editor.org/rfc/rfc7009",
    ),
)


PROFILES = (KEYCLOAK, okta_profile("okta-oauth2"), okta_profile("okta-openidconnect"), AUTH0, OIDC)
