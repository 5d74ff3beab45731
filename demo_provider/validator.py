"""The demo provider's oauthlib request validator: DOT's, with one refresh that can skip
rotation, and the OpenID Connect claims of the demo users."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request as OAuthlibRequest

# A WSGI environ key (not an HTTP header, so no client can send it) with which the
# token view asks the validator not to rotate: see DemoOAuth2Validator.
KEEP_REFRESH_TOKEN = "DEMO_PROVIDER_KEEP_REFRESH_TOKEN"
EMAIL_DOMAIN = "demo.example"
FAMILY_NAME = "Demo"


def user_id(user: Any) -> str:
    """Monzo-style user id, stable and derived from the username; also the OIDC ``sub``,
    so that one person is the same account whichever way a site logs them in."""
    return f"user_{user.username}"


def _given_name(request: OAuthlibRequest) -> str:
    return str(request.user.username).capitalize()


class DemoOAuth2Validator(OAuth2Validator):
    """DOT's validator, except that one refresh can be processed without rotation, and
    ID tokens and the userinfo endpoint speak of the demo users the demo's way.

    The drop_refresh_token fault strips the refresh token from a successful
    response; had DOT rotated, the client would be left with a revoked token. With
    rotation off DOT re-uses the presented refresh token, which keeps working.
    """

    def rotate_refresh_token(self, request: OAuthlibRequest) -> bool:
        return super().rotate_refresh_token(request) and KEEP_REFRESH_TOKEN not in request.headers

    def get_additional_claims(self) -> dict[str, Callable[[OAuthlibRequest], Any]]:
        """The claims beyond DOT's ``sub``, which this ``sub`` replaces: DOT's would be the
        database key, which is neither stable across databases nor the uid the Monzo-shaped
        API gives. Taking no request makes DOT list these names in discovery's
        ``claims_supported``; DOT releases each only with its scope (``oidc_claim_scope``)."""
        return {
            "sub": lambda request: user_id(request.user),
            "preferred_username": lambda request: request.user.username,
            "name": lambda request: f"{_given_name(request)} {FAMILY_NAME}",
            "given_name": _given_name,
            "family_name": lambda request: FAMILY_NAME,
            "email": lambda request: f"{request.user.username}@{EMAIL_DOMAIN}",
            "email_verified": lambda request: True,
        }

    def get_id_token_dictionary(
        self, token: dict[str, Any], token_handler: Any, request: OAuthlibRequest
    ) -> tuple[dict[str, Any], datetime]:
        """DOT's claims, without ``auth_time`` in an ID token minted by a refresh.

        OpenID Connect Core 12.2 lets a refreshed ID token carry ``auth_time`` only as
        the time of the original authentication, and relying parties (social-core among
        them) reject one that differs. DOT would put the user's latest login there, which
        moves whenever the user logs in anywhere else; the claim is optional, so it goes.
        """
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        if request.grant_type == "refresh_token":
            claims.pop("auth_time", None)
        return claims, expiration_time
