"""New account, or link to an existing one? The pause in the login pipeline that asks.

Someone who disconnected a provider and later logs in with it again would otherwise get a
second, empty user without noticing. So when nobody is logged in and the provider account is
linked to no one, the pipeline stops before ``create_user`` (Python Social Auth's own partial
pipeline: ``choose_account`` is a ``partial_step``) and the person chooses on the site's page
(integrations/web/account_choice.py): create a new account, or log in to their existing one,
which the provider account is then linked to. Either way the pipeline resumes at
``/complete/<backend>/?partial_token=…``: no second trip to the provider.

What keeps the pause safe:

- **Nothing is written before the choice** but social-auth's ``Partial`` row and this
  session's record of it. The token response in the row is sealed with the site's keys
  (store/crypto), like stored credentials; the callback's code and state are not kept.
- **Bound to this browser session, single use, short-lived.** The record lives in the
  session; ``claim`` (called by the strategy's ``partial_load``) accepts a token only when it
  is this session's pending choice, decided, and younger than CUSTODIAN_ACCOUNT_CHOICE_TTL,
  and it removes the record and the row before the pipeline resumes, so a replay finds
  nothing. Anything else is a clear error page (``account_choice_invalid`` /
  ``account_choice_expired`` in psa/messages.py) and creates nothing.
- **Linking needs the account's own credentials**: the page checks the password with
  Django's ``authenticate`` (or the person logs in with a provider already linked), and only
  then records whom to link. On resume the provider account is looked up again, so one
  linked to someone else in the meantime is refused (``identity_in_use``).

PSA's ``partial`` decorator would also put the token under its own session key at once; it
is put there only when the person has chosen (``decide``), so a later, fresh login with the
provider is never mistaken for the resumption of an abandoned choice.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.urls import reverse
from django.utils import timezone
from social_core.exceptions import AuthAssociationError, AuthPolicyError, AuthSessionError
from social_core.pipeline.partial import partial_step
from social_core.pipeline.social_auth import social_user
from social_core.utils import PARTIAL_TOKEN_SESSION_NAME
from social_django.models import Partial

from integrations.models import User
from integrations.security import secrets_registry
from integrations.store import crypto

SESSION_KEY = "custodian_account_choice"
SEALED = "custodian_sealed_response"
CREATE, LINK = "create", "link"


@dataclass
class PendingChoice:
    """This session's login waiting for a choice (kept in the session, JSON-serializable)."""

    token: str
    backend: str
    uid: str
    account: str
    started: float
    next: str = ""
    failures: int = 0
    decision: str = ""
    user_id: int | None = None

    def expired(self) -> bool:
        return time.time() - self.started >= settings.CUSTODIAN_ACCOUNT_CHOICE_TTL


def current(session: SessionBase) -> PendingChoice | None:
    """This session's pending choice, or None (also for a record of an unexpected shape)."""
    raw = session.get(SESSION_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return PendingChoice(**raw)
    except TypeError:
        return None


def save(session: SessionBase, pending: PendingChoice) -> None:
    session[SESSION_KEY] = asdict(pending)


def discard(session: SessionBase, pending: PendingChoice | None = None) -> None:
    """Forget the pending choice and delete its partial, tokens and all."""
    pending = pending or current(session)
    session.pop(SESSION_KEY, None)
    if pending is not None:
        Partial.objects.filter(token=pending.token).delete()
        if session.get(PARTIAL_TOKEN_SESSION_NAME) == pending.token:
            session.pop(PARTIAL_TOKEN_SESSION_NAME)


def decide(
    session: SessionBase, pending: PendingChoice, decision: str, user_id: int | None = None
) -> str:
    """Record the person's choice and return the URL that resumes the pipeline with it."""
    pending.decision, pending.user_id = decision, user_id
    save(session, pending)
    # Where the login was going; a login with another provider on the way changed it.
    if pending.next:
        session["next"] = pending.next
    else:
        session.pop("next", None)
    # PSA resumes only a partial whose token this session holds under its own key.
    session[PARTIAL_TOKEN_SESSION_NAME] = pending.token
    complete = reverse("social:complete", args=[pending.backend])
    return f"{complete}?{urlencode({token_name(): pending.token})}"


def token_name() -> str:
    """The query parameter PSA reads a partial's token from."""
    return getattr(settings, "SOCIAL_AUTH_PARTIAL_PIPELINE_TOKEN_NAME", None) or "partial_token"


def account_name(details: dict[str, Any], uid: str) -> str:
    """How the page names the provider account: its owner's name, handle or e-mail."""
    for key in ("fullname", "username", "email"):
        value = details.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:100]
    return uid


@partial_step(save_to_session=False)
def choose_account(
    strategy: Any,
    backend: Any,
    pipeline_index: int,
    *args: Any,
    current_partial: Any,
    uid: str,
    details: dict[str, Any],
    response: dict[str, Any] | None = None,
    user: Any = None,
    social: Any = None,
    account_choice: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Ask whether an unknown provider account makes a new user or joins an existing one."""
    if isinstance(response, dict) and SEALED in response:
        return _resume(backend, uid, response, user, account_choice, kwargs)
    if user is not None or social is not None:
        return None  # linking while logged in, or a provider account known here
    return _ask(strategy, backend, current_partial, uid, details)


def _ask(strategy: Any, backend: Any, partial: Any, uid: str, details: dict[str, Any]) -> Any:
    """Stop the pipeline: keep what it knows (tokens sealed) and send the person to choose."""
    stored = partial.data["kwargs"]
    stored["response"] = {SEALED: crypto.encrypt(json.dumps(stored.get("response") or {}))}
    partial.data["request_data"] = {}  # the callback's code and state: spent, not kept
    session = strategy.session
    previous = current(session)
    if previous is not None:  # a choice abandoned in this session: this login replaces it
        discard(session, previous)
    ttl = timedelta(seconds=settings.CUSTODIAN_ACCOUNT_CHOICE_TTL)
    Partial.objects.filter(timestamp__lt=timezone.now() - ttl).delete()
    next_url = strategy.session_get("next")
    save(
        session,
        PendingChoice(
            token=partial.token,
            backend=backend.name,
            uid=uid,
            account=account_name(details, uid),
            started=time.time(),
            next=next_url if isinstance(next_url, str) else "",
        ),
    )
    return strategy.redirect(reverse("account_choice"))


def _resume(
    backend: Any,
    uid: str,
    sealed: dict[str, Any],
    user: Any,
    choice: dict[str, Any] | None,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Go on with the choice ``claim`` handed over: unseal the tokens, pick the user."""
    if not choice or choice.get("decision") not in (CREATE, LINK):
        raise AuthSessionError(backend, code="account_choice_invalid", stage="pipeline")
    response = json.loads(crypto.decrypt(sealed[SEALED]))
    secrets_registry.register_token_response(response)
    chosen = None
    if choice["decision"] == LINK:
        user_id = choice.get("user_id")
        chosen = User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None
        if chosen is None or not chosen.is_active:
            raise AuthPolicyError(backend, code="account_inactive", stage="pipeline")
    if user is not None and getattr(user, "pk", None) != getattr(chosen, "pk", None):
        # Logged in as someone else since the choice (a login flushes the session, so this
        # is defence in depth): never link to an account that did not choose it.
        raise AuthSessionError(backend, code="account_choice_invalid", stage="pipeline")
    # Again, now: the provider account may have been linked since the choice was offered.
    found = social_user(
        backend,
        uid,
        chosen,
        id_key=kwargs.get("id_key") or "",
        response=response,
        legacy_uids=kwargs.get("legacy_uids") or (),
        legacy_identifiers=kwargs.get("legacy_identifiers") or (),
    )
    if chosen is None and found["social"] is not None:
        raise AuthAssociationError(backend, code="identity_in_use", stage="pipeline")
    return {**found, "response": response}


def claim(strategy: Any, token: str, partial: Any) -> Any:
    """Vet a partial the complete view is about to resume (see the module docstring).

    Returns the partial with the choice in its kwargs, or None for an abandoned choice met
    by a fresh provider callback (PSA then completes that callback instead); raises
    otherwise.
    """
    session = strategy.session
    pending = current(session)
    if not strategy.get_request_data().get(token_name()):
        if pending is not None and pending.token == token:
            discard(session, pending)
        return None
    backend = getattr(strategy.request, "backend", None)
    if (
        pending is None
        or pending.token != token
        or not pending.decision
        or backend is None
        or backend.name != pending.backend
    ):
        # Not this session's choice, not chosen yet, or through another provider's URL: the
        # partial (maybe another session's) is left alone.
        raise AuthSessionError(backend, code="account_choice_invalid", stage="callback")
    discard(session, pending)  # single use, whatever happens next
    if pending.expired():
        raise AuthSessionError(backend, code="account_choice_expired", stage="callback")
    if partial is None:
        raise AuthSessionError(backend, code="account_choice_invalid", stage="callback")
    partial.extend_kwargs(
        {"account_choice": {"decision": pending.decision, "user_id": pending.user_id}}
    )
    return partial
