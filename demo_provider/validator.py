"""The demo provider's oauthlib request validator: DOT's, with one refresh that can skip
rotation."""

from __future__ import annotations

from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request as OAuthlibRequest

# A WSGI environ key (not an HTTP header, so no client can send it) with which the
# token view asks the validator not to rotate: see DemoOAuth2Validator.
KEEP_REFRESH_TOKEN = "DEMO_PROVIDER_KEEP_REFRESH_TOKEN"


def user_id(user: Any) -> str:
    """Monzo-style user id, stable and derived from the username."""
    return f"user_{user.username}"


class DemoOAuth2Validator(OAuth2Validator):
    """DOT's validator, except that one refresh can be processed without rotation.

    The drop_refresh_token fault strips the refresh token from a successful
    response; had DOT rotated, the client would be left with a revoked token. With
    rotation off DOT re-uses the presented refresh token, which keeps working.
    """

    def rotate_refresh_token(self, request: OAuthlibRequest) -> bool:
        return super().rotate_refresh_token(request) and KEEP_REFRESH_TOKEN not in request.headers
