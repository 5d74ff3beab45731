"""Pipeline steps (see SOCIAL_AUTH_PIPELINE and SOCIAL_AUTH_DISCONNECT_PIPELINE in settings).

Plain functions with Python Social Auth's signature; each returns a dict to merge into the
pipeline's context, or None.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.contrib import messages
from django.urls import reverse
from social_core.backends.oauth import BaseOAuth2
from social_core.exceptions import AuthPolicyError
from social_core.pipeline.social_auth import load_extra_data

from integrations.models import CredentialEvent
from integrations.providers.registry import is_offered, provider_title
from integrations.providers.registry import profile as provider_profile
from integrations.psa import notices
from integrations.psa.disconnect import disconnect as disconnect_association
from integrations.psa.strategy import ANOTHER_ACCOUNT, ASKED
from integrations.refreshing.approval import record_approval
from integrations.store import crypto
from integrations.store.credentials import RAW_TOKEN_KEYS, Status, read_credentials
from integrations.store.history import record_event
from integrations.store.writes import store_token_response

logger = logging.getLogger(__name__)


def remember_signup_provider(
    backend: Any, user: Any = None, is_new: bool = False, *args: Any, **kwargs: Any
) -> None:
    """Record on a newly created user which provider created it."""
    if user is not None and is_new and not user.signup_provider:
        user.signup_provider = backend.name
        user.save(update_fields=["signup_provider"])


def refuse_inactive_user(backend: Any, user: Any = None, *args: Any, **kwargs: Any) -> None:
    """Stop a login to a deactivated user before anything is stored.

    Python Social Auth refuses such a login only after the whole pipeline ran, so the new
    tokens would already have replaced the stored ones and the history recorded a login.
    """
    if user is not None and not user.is_active:
        raise AuthPolicyError(backend, code="account_inactive", stage="pipeline")


def store_credentials(
    backend: Any, user: Any, response: dict[str, Any], *args: Any, social: Any = None,
    details: dict[str, Any] | None = None, **kwargs: Any,
) -> None:
    """Store the login's tokens in the normalized, encrypted shape, status "active".

    Replaces social-core's load_extra_data, which stores whatever the provider sent (Monzo's
    stock backend drops refresh_token and expires_in, so it can never refresh).
    """
    if social is None:
        return
    if not isinstance(backend, BaseOAuth2):
        # OAuth 1 and OpenID 2 backends still log in; their tokens are not Custodian's to keep.
        load_extra_data(backend, details or {}, response, social.uid, user, social=social)
        return
    try:
        previous_refresh_token = (
            read_credentials(social.extra_data).refresh_token if social.extra_data else None
        )
    except crypto.DecryptionError:
        # Unreadable with the keys in force: this login replaces them (how a user recovers).
        previous_refresh_token = None
    # The backend's own extras (user_id, auth_time, ...), minus raw token material.
    extras = {
        key: value
        for key, value in backend.extra_data(user, social.uid, response, details or {}, kwargs)
        .items()
        if key not in RAW_TOKEN_KEYS and key != "token_type"
    }
    reconnect = bool(social.extra_data and social.extra_data.get("access_token"))
    store_token_response(
        social,
        response,
        previous_refresh_token=previous_refresh_token,
        now=time.time(),
        # A new token needs its own approval where the provider asks for one (Monzo): the
        # check that follows notices it, and connection_approved fires again.
        extra={**extras, "status": Status.ACTIVE, "status_reason": None, "approved_at": None},
    )
    record_event(
        social,
        CredentialEvent.Kind.CONNECTED,
        actor=_request_user(backend) or user,
        detail="reconnected" if reconnect else "",
    )


def check_approval(
    backend: Any,
    response: dict[str, Any],
    *args: Any,
    social: Any = None,
    new_association: bool = True,
    **kwargs: Any,
) -> None:
    """Find out whether data access still awaits approval in the provider's app (Monzo),
    store a friendly account name, and tell the user what happens next: when they asked for
    another account and the provider gave back one already connected, say so and how to get
    another."""
    # The begin request's flag, kept in the session for this completion only.
    another = backend.strategy.session_pop(ANOTHER_ACCOUNT) == ASKED
    if social is None or not is_offered(backend.name):
        return
    # The token as stored (a declared provider may nest it in the response), just written.
    access_token = read_credentials(social.extra_data).access_token
    approved = record_approval(
        social, access_token, fallback_name=_name_in(kwargs.get("details") or {})
    )
    request = getattr(backend.strategy, "request", None)
    # The admin's connect flow reports its own outcome.
    if request is None or request.path.startswith(reverse("admin:index")):
        return
    title = provider_title(backend.name)
    name = social.extra_data.get("display_name") or social.uid
    if another and not new_association:
        profile = provider_profile(backend.name)
        messages.warning(
            request,
            notices.already_connected(
                title,
                name,
                chooses_account=bool(profile.select_account),
                sign_out_url=profile.sign_out_url,
            ),
        )
        return
    if approved is False:
        messages.warning(
            request,
            f"Almost done: open the {title} app and approve access for this site. We check "
            f"for your approval regularly, or press “I've approved — check again”.",
        )
    else:
        messages.success(request, f"{title} account {name} is connected.")


def _name_in(details: dict[str, Any]) -> str:
    """A friendly account name from the provider's user details, for providers whose profile
    does not fetch one."""
    for key in ("fullname", "username", "email"):
        if isinstance(details.get(key), str) and details[key]:
            return str(details[key])[:100]
    return ""


def _request_user(backend: Any) -> Any:
    request = getattr(backend.strategy, "request", None)
    user = getattr(request, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def disconnect(strategy: Any, entries: list[Any], *args: Any, **kwargs: Any) -> None:
    """Revoke each association at its provider when it can, record it, and remove it
    (integrations.psa.disconnect), telling the user what happened at the provider."""
    request = getattr(strategy, "request", None)
    actor = getattr(request, "user", None)
    for entry in entries:
        provider = entry.provider
        name = (entry.extra_data or {}).get("display_name") or entry.uid
        outcome = disconnect_association(entry, actor=actor, request=request)
        if request is not None:
            level, text = notices.disconnected(
                provider_title(provider),
                name,
                outcome,
                provider_profile(provider).connected_apps_url,
            )
            messages.add_message(request, level, text)
