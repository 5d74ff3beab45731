"""Profiles of consumer and business application backends: Strava, Spotify, Dropbox, Slack,
Salesforce, Zoom, Discord, Twitch, LinkedIn."""

from __future__ import annotations

from typing import Any

import requests

from backends.profiles import Profile, Revocation


def strava_error_code(body: Any) -> str | None:
    """Strava's errors are `{"message", "errors": [{"resource", "field", "code"}]}` (its API
    reference's Fault), not OAuth's `error`: "RefreshToken.invalid" for a dead refresh token."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    first = errors[0]
    return f"{first.get('resource')}.{first.get('code')}"


STRAVA = Profile(
    name="strava",
    title="Strava",
    api_base_url="https://www.strava.com/api/v3",
    # Deauthorization takes the access token and ends the whole grant.
    revocation=Revocation(
        url="https://www.strava.com/oauth/deauthorize", token="access", param="access_token"
    ),
    refresh_before_revoke=True,
    error_code=strava_error_code,
    reauth_codes=("RefreshToken.invalid",),
    # Settings, "My Apps".
    connected_apps_url="https://www.strava.com/settings/apps",
    sign_out_url="https://www.strava.com/logout",
    refresh=(
        "6-hour access tokens (expires_at is absolute); every refresh answer carries a refresh "
        "token that may be new, and then the old one stops working"
    ),
    sources=(
        "https://developers.strava.com/docs/authentication/",
        "https://developers.strava.com/docs/reference/#api-models-Fault",
    ),
)

SPOTIFY = Profile(
    name="spotify",
    title="Spotify",
    api_base_url="https://api.spotify.com/v1",
    # Spotify offers no revocation endpoint: users remove apps on their account page.
    revocation=None,
    connected_apps_url="https://www.spotify.com/account/apps/",
    sign_out_url="https://accounts.spotify.com/logout",
    refresh=(
        "1-hour access tokens; a refresh may or may not return a new refresh token: when it "
        "does not, keep using the one you have"
    ),
    sources=(
        "https://developer.spotify.com/documentation/web-api/tutorials/code-flow",
        "https://developer.spotify.com/documentation/web-api/tutorials/refreshing-tokens",
    ),
)

DROPBOX = Profile(
    name="dropbox-oauth2",
    title="Dropbox",
    api_base_url="https://api.dropboxapi.com/2",
    # File up- and downloads, and longpoll notifications, have hosts of their own.
    api_hosts=("https://content.dropboxapi.com", "https://notify.dropboxapi.com"),
    # auth/token/revoke disables the calling access token, its refresh token and every
    # other access token of that refresh token.
    revocation=Revocation(
        url="https://api.dropboxapi.com/2/auth/token/revoke", token="access", placement="bearer"
    ),
    refresh_before_revoke=True,
    # Without it Dropbox issues a short-lived access token and no refresh token.
    auth_params={"token_access_type": "offline"},
    # Signs the person out at Dropbox first, so they can sign in to another account.
    select_account={"force_reauthentication": "true"},
    # Settings, "Apps".
    connected_apps_url="https://www.dropbox.com/account/connected_apps",
    sign_out_url="https://www.dropbox.com/logout",
    refresh=(
        "short-lived access tokens (4 hours); the long-lived refresh token does not rotate "
        "(the refresh answer has none)"
    ),
    sources=(
        "https://developers.dropbox.com/oauth-guide",
        "https://www.dropbox.com/developers/documentation/http/documentation#auth-token-revoke",
    ),
)


def slack_confirmed(response: requests.Response) -> bool:
    """Slack answers HTTP 200 to every Web API call and reports failure as `"ok": false`."""
    try:
        return bool(response.json().get("ok"))
    except (ValueError, AttributeError):
        return False


SLACK = Profile(
    name="slack",
    title="Slack",
    api_base_url="https://slack.com/api",
    revocation=Revocation(
        url="https://slack.com/api/auth.revoke",
        token="access",
        placement="bearer",
        confirm=slack_confirmed,
    ),
    refresh_before_revoke=True,
    # oauth.v2.access's code for a dead refresh token (token rotation).
    reauth_codes=("invalid_refresh_token",),
    refresh=(
        "the backend speaks the classic-app flow (oauth.access): user tokens never expire and "
        "come without a refresh token; token rotation (12-hour tokens) is for oauth.v2 apps"
    ),
    sources=(
        "https://docs.slack.dev/reference/methods/oauth.access/",
        "https://docs.slack.dev/reference/methods/auth.revoke/",
        "https://docs.slack.dev/authentication/using-token-rotation",
    ),
)

SALESFORCE_API_VERSION = "v64.0"
SALESFORCE_SOURCES = (
    "https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_revoke_token.htm",
    "https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_refresh_token_flow.htm",
    "https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_web_server_flow.htm",
    "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/"
    "intro_rest_resources.htm",
)
SALESFORCE_REFRESH = (
    "no expires_in (the access token lasts the org's session timeout), so it is refreshed when "
    "the API answers 401; the refresh token does not rotate and lasts until revoked unless the "
    "connected app's refresh token policy says otherwise"
)

SALESFORCE = Profile(
    name="salesforce-oauth2",
    title="Salesforce",
    # Each org has its own instance host, given in the token response (`instance_url`); the
    # REST API is versioned (a site picks another with SOCIAL_AUTH_..._API_BASE_URL).
    api_base_url=f"{{instance_url}}/services/data/{SALESFORCE_API_VERSION}",
    # Revoking the refresh token revokes its access tokens too.
    revocation=Revocation(url="https://login.salesforce.com/services/oauth2/revoke"),
    # The web server flow's prompt takes login, consent and select_account.
    select_account={"prompt": "select_account"},
    refresh=SALESFORCE_REFRESH,
    sources=SALESFORCE_SOURCES,
)


def zoom_error_code(body: Any) -> str | None:
    """Zoom's token errors say `"error": "invalid_request"` for everything; the `reason`
    ("Invalid Token!") tells a spent or revoked refresh token apart."""
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None


ZOOM = Profile(
    name="zoom-oauth2",
    title="Zoom",
    api_base_url="https://api.zoom.us/v2",
    revocation=Revocation(url="https://zoom.us/oauth/revoke", token="access", auth="basic"),
    refresh_before_revoke=True,
    error_code=zoom_error_code,
    reauth_codes=("Invalid Token!",),
    # The App Marketplace's list of the apps a person added.
    connected_apps_url="https://marketplace.zoom.us/user/installed",
    refresh=(
        "1-hour access tokens; every refresh returns a new refresh token and a previous one "
        "is refused (\"Invalid Token!\"); refresh tokens expire after 15 years"
    ),
    sources=(
        "https://devsupport.zoom.us/hc/en-us/articles/"
        "360060332931-Extending-the-expiration-for-an-OAuth-access-token",
        "https://developers.zoom.us/docs/integrations/oauth/",
    ),
)

DISCORD = Profile(
    name="discord",
    title="Discord",
    api_base_url="https://discord.com/api/v10",
    # RFC 7009; revoking either token revokes every token of the authorization.
    revocation=Revocation(
        url="https://discord.com/api/oauth2/token/revoke", hint=True, auth="basic"
    ),
    # User settings, "Authorized Apps".
    connected_apps_url="https://discord.com/settings/authorized-apps",
    refresh=(
        "7-day access tokens; a refresh returns a new access and refresh token pair (whether "
        "the old refresh token keeps working is not documented: keep the newest)"
    ),
    sources=("https://discord.com/developers/docs/topics/oauth2",),
)


def twitch_client_id(backend: Any) -> dict[str, str]:
    """Every Helix call names the app in a Client-Id header besides the user's token."""
    return {"Client-Id": str(backend.get_key_and_secret()[0])}


def twitch_error_code(body: Any) -> str | None:
    """Twitch's token errors are `{"status": 400, "message": "Invalid refresh token"}`."""
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else None


TWITCH = Profile(
    name="twitch",
    title="Twitch",
    api_base_url="https://api.twitch.tv/helix",
    headers=twitch_client_id,
    # The client id and the access token, form-encoded; no secret.
    revocation=Revocation(
        url="https://id.twitch.tv/oauth2/revoke", token="access", auth="client_id"
    ),
    refresh_before_revoke=True,
    error_code=twitch_error_code,
    reauth_codes=("Invalid refresh token",),
    # Settings, "Connections": its "Other connections" are the apps given access.
    connected_apps_url="https://www.twitch.tv/settings/connections",
    refresh=(
        "access tokens last a few hours (expires_in); a confidential client's refresh token "
        "does not expire but may change on refresh: keep the newest"
    ),
    sources=(
        "https://dev.twitch.tv/docs/authentication/refresh-tokens/",
        "https://dev.twitch.tv/docs/authentication/revoke-tokens/",
        "https://dev.twitch.tv/docs/api/get-started/",
    ),
)

LINKEDIN = Profile(
    name="linkedin-oauth2",
    title="LinkedIn",
    api_base_url="https://api.linkedin.com/v2",
    # LinkedIn's documentation describes no revocation endpoint for member tokens.
    revocation=None,
    # Settings, "Permitted services".
    connected_apps_url="https://www.linkedin.com/psettings/permitted-services",
    sign_out_url="https://www.linkedin.com/m/logout/",
    refresh=(
        "60-day access tokens; refresh tokens only for approved partners, valid 365 days from "
        "the first authorization: refreshing does not extend them"
    ),
    sources=(
        "https://learn.microsoft.com/en-us/linkedin/shared/authentication/"
        "programmatic-refresh-tokens",
        "https://learn.microsoft.com/en-us/linkedin/shared/authentication/"
        "authorization-code-flow",
    ),
)

PROFILES = (STRAVA, SPOTIFY, DROPBOX, SLACK, SALESFORCE, ZOOM, DISCORD, TWITCH, LINKEDIN)
