"""Declarations of the providers this site ships with (see backends/generic.py)."""

from __future__ import annotations


def demo_provider_declaration(base_url: str, client_id: str, client_secret: str) -> dict:
    """Declare the offline demo provider (demo_provider/) served at `base_url`."""
    base_url = base_url.rstrip("/")
    return {
        "title": "Demo provider",
        "authorization_url": f"{base_url}/oauth2/authorize/",
        "token_url": f"{base_url}/oauth2/token",
        "api_base_url": base_url,
        "userinfo_url": f"{base_url}/ping/whoami",
        "id_key": "user_id",
        "scopes": [],
        "pkce": True,
        "revocation_url": f"{base_url}/oauth2/revoke_token/",
        # It links whoever is signed in there: another account needs a sign-out first.
        "sign_out_url": f"{base_url}/logout/",
        "connected_apps_url": f"{base_url}/apps/",
        "client_id": client_id,
        "client_secret": client_secret,
    }
