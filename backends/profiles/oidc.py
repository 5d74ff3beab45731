"""The profile of social-core's generic OpenID Connect backend (`oidc`).

Its API is the issuer's (the userinfo endpoint and whatever the provider serves beside it),
so relative get_session URLs resolve against the issuer, unless the site sets
SOCIAL_AUTH_OIDC_API_BASE_URL. Revocation is RFC 7009 at the discovery document's
`revocation_endpoint`, with the refresh token and the client authentication the backend uses
at the token endpoint: social-core's own `revoke_token` for OpenID Connect sends a GET
without the token, which RFC 7009 servers refuse.
"""

from __future__ import annotations

from backends.profiles import Profile, Revocation, register

OIDC = Profile(
    name="oidc",
    title="OpenID Connect",
    api_base_url=lambda backend, data: backend.oidc_endpoint(),
    revocation=Revocation(hint=True, auth="auto"),
    refresh="refresh tokens as the provider issues them (some need scope offline_access)",
    sources=(
        "OpenID Connect Discovery 1.0 §3-4",
        "RFC 7009 (OAuth 2.0 Token Revocation) §2",
    ),
)
register(OIDC)
