"""Profiles of the code-hosting backends: GitHub (OAuth App and GitHub App), GitLab, Bitbucket."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from backends.profiles import Profile, Revocation

GITHUB_SOURCES = (
    "https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization",
    "https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/"
    "token-expiration-and-revocation",
    "https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api",
    "https://github.blog/changelog/2024-06-07-account-picker-updates-for-oauth-and-github-app-"
    "sign-in/",
)
# GitHub's account picker (the standard prompt parameter, since June 2024).
GITHUB_SELECT_ACCOUNT = {"prompt": "select_account"}
GITHUB_SIGN_OUT = "https://github.com/logout"

# DELETE /applications/{client_id}/grant with the app's credentials as HTTP Basic and the
# user's access token in a JSON body: it deletes the grant, and with it every token of it.
GITHUB_REVOCATION = Revocation(
    url="https://api.github.com/applications/{client_id}/grant",
    method="DELETE",
    token="access",
    placement="json",
    param="access_token",
    auth="basic",
)

GITHUB = Profile(
    name="github",
    title="GitHub",
    api_base_url="https://api.github.com",
    # Release assets are uploaded to their own host.
    api_hosts=("https://uploads.github.com",),
    revocation=GITHUB_REVOCATION,
    # The grant is named by its access token (an App's user token lasts 8 hours).
    refresh_before_revoke=True,
    select_account=GITHUB_SELECT_ACCOUNT,
    # "Authorized OAuth Apps" in the account's settings.
    connected_apps_url="https://github.com/settings/applications",
    sign_out_url=GITHUB_SIGN_OUT,
    refresh=(
        "OAuth App tokens never expire and come without a refresh token; GitHub revokes a "
        "token unused for a year, and only a new login replaces it"
    ),
    sources=GITHUB_SOURCES,
)

# The same host, revocation and pages; its user tokens expire and its refresh tokens rotate.
GITHUB_APP = replace(
    GITHUB,
    name="github-app",
    # "Authorized GitHub Apps" in the account's settings.
    connected_apps_url="https://github.com/settings/apps/authorizations",
    # A refresh token lives six months and each refresh brings a new one: refreshing an idle
    # grant once a month keeps it alive.
    keepalive=30 * 86400,
    refresh=(
        "user tokens last 8 hours; refresh tokens 6 months and rotate: once used, the refresh "
        "token and the old access token stop working (bad_refresh_token, sent with HTTP 200)"
    ),
    sources=(
        "https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/"
        "refreshing-user-access-tokens",
        *GITHUB_SOURCES,
    ),
)


def gitlab_api_base(backend: Any, data: Any) -> str:
    """The REST API of the GitLab instance the backend talks to (gitlab.com unless the site
    sets SOCIAL_AUTH_GITLAB_API_URL for a self-managed one)."""
    return str(backend.api_url("/api/v4"))


def gitlab_revoke_url(backend: Any) -> str:
    """/oauth/revoke on the backend's GitLab instance"""
    return str(backend.api_url("/oauth/revoke"))


GITLAB = Profile(
    name="gitlab",
    title="GitLab",
    api_base_url=gitlab_api_base,
    revocation=Revocation(url=gitlab_revoke_url, token="refresh", auth="post"),
    refresh=(
        "access tokens last 2 hours; a refresh invalidates the old access and refresh token "
        "and sends new ones"
    ),
    sources=(
        "https://docs.gitlab.com/api/oauth2/",
        "https://docs.gitlab.com/integration/oauth_provider/",
    ),
)

BITBUCKET = Profile(
    name="bitbucket-oauth2",
    title="Bitbucket",
    api_base_url="https://api.bitbucket.org/2.0",
    # Bitbucket Cloud documents no revocation endpoint for OAuth consumers: the user revokes
    # access in their account settings.
    revocation=None,
    # Personal settings, "App authorizations".
    connected_apps_url="https://bitbucket.org/account/settings/app-authorizations/",
    refresh=(
        "access tokens last 2 hours; the refresh token does not expire and does not change; a "
        "revoked one answers 400 invalid_request, which the backend reads as reconnect"
    ),
    sources=("https://developer.atlassian.com/cloud/bitbucket/oauth-2/",),
)

PROFILES = (GITHUB, GITHUB_APP, GITLAB, BITBUCKET)
