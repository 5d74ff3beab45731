"""Profiles of Google's and Microsoft's backends."""

from __future__ import annotations

from dataclasses import replace

from backends.profiles import Profile, Revocation

DAY = 86400

GOOGLE = Profile(
    name="google-oauth2",
    title="Google",
    # Drive, Calendar, YouTube and the OAuth 2 user info answer here (`drive/v3`,
    # `calendar/v3`, `youtube/v3`, uploads under `upload/`).
    api_base_url="https://www.googleapis.com",
    # The APIs that have a host of their own. Google has no wildcard: a site that calls
    # another one adds its origin with SOCIAL_AUTH_GOOGLE_OAUTH2_API_HOSTS.
    api_hosts=(
        "https://gmail.googleapis.com",
        "https://people.googleapis.com",
        "https://sheets.googleapis.com",
        "https://docs.googleapis.com",
        "https://slides.googleapis.com",
        "https://forms.googleapis.com",
        "https://tasks.googleapis.com",
        "https://youtube.googleapis.com",
        "https://photoslibrary.googleapis.com",
        "https://openidconnect.googleapis.com",
        "https://oauth2.googleapis.com",
    ),
    # Revoking the refresh token (or an access token that has one) ends the whole grant.
    revocation=Revocation(url="https://oauth2.googleapis.com/revoke", token="refresh"),
    # A refresh token unused for six months stops working: refresh idle grants monthly.
    keepalive=30 * DAY,
    # No refresh token without offline access; only the first consent returns one unless
    # the consent screen is shown again.
    auth_params={"access_type": "offline", "prompt": "consent"},
    # prompt is a space-separated list: the account chooser, and consent still (without it
    # an account that consented before brings no refresh token).
    select_account={"prompt": "select_account consent"},
    connected_apps_url="https://myaccount.google.com/connections",
    sign_out_url="https://accounts.google.com/Logout",
    refresh=(
        "no rotation: the refresh answer has no refresh token, keep the one you have; it dies "
        "after 6 months unused, beyond 100 per account and client (oldest first), on a "
        "password change with Gmail scopes, and after 7 days for apps in Testing"
    ),
    sources=(
        "https://developers.google.com/identity/protocols/oauth2/web-server#offline",
        "https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke",
        "https://developers.google.com/identity/protocols/oauth2#expiration",
        "https://developers.google.com/identity/protocols/oauth2/web-server#creatingclient",
        "https://support.google.com/accounts/answer/13533235",
    ),
)

MICROSOFT_SOURCES = (
    "https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens",
    "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow",
    "https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes",
    "https://learn.microsoft.com/en-us/entra/identity-platform/msal-js-prompt-behavior",
)
# The identity platform's account chooser (v1.0 and v2.0 endpoints alike).
MICROSOFT_SELECT_ACCOUNT = {"prompt": "select_account"}
MICROSOFT_REFRESH = (
    "refresh tokens replace themselves on every use (keep the newest; Microsoft does not "
    "revoke the old one) and last 90 days (24 hours for SPA redirect URIs)"
)
# OpenID Connect's "the user must sign in again" codes, which Entra answers when conditional
# access or MFA needs the user; invalid_grant is social-core's already.
MICROSOFT_REAUTH = ("interaction_required", "consent_required", "login_required")

AZUREAD = Profile(
    name="azuread-oauth2",
    title="Microsoft",
    api_base_url="https://graph.microsoft.com/v1.0",
    # Entra has no revocation endpoint for one grant; Graph's revokeSignInSessions would sign
    # the user out of every application.
    revocation=None,
    reauth_codes=MICROSOFT_REAUTH,
    keepalive=30 * DAY,
    select_account=MICROSOFT_SELECT_ACCOUNT,
    # Work and school accounts (Entra ID) remove an app's permissions in My Apps.
    connected_apps_url="https://myapps.microsoft.com",
    refresh=f"v1.0 endpoint: a refresh token with every code; {MICROSOFT_REFRESH}",
    sources=MICROSOFT_SOURCES,
)

# The v2.0 endpoint: the same API and rules, a refresh token only with offline_access.
MICROSOFT_GRAPH = replace(
    AZUREAD,
    name="microsoft-graph",
    scopes=("offline_access",),
    # Personal Microsoft accounts; a work or school account's apps are in My Apps.
    connected_apps_url="https://account.live.com/consent/Manage",
    refresh=f"v2.0 endpoint: a refresh token only with offline_access; {MICROSOFT_REFRESH}",
)

PROFILES = (GOOGLE, AZUREAD, MICROSOFT_GRAPH)
