"""In-app approval (Monzo's Strong Customer Authentication): ask, record, and notice it end.

Some providers' tokens carry no permission until the user approves access in the provider's
own app (the profile's `approval`). Monzo lets a client read the full transaction history
only within 5 minutes of authentication, so approval has to be noticed at its first sign:
the check right after login (psa/pipeline.check_approval), the user's "check again", and
every background run (background/approvals.py), which re-checks each association awaiting
approval with a fresh token.

`connection_approved` fires once per approval. `approved_at` in extra_data records that the
approval was noticed; a new login, or the provider asking for approval again (an API 403 with
one of the profile's `approval_codes`, seen by get_session), clears it.

Answers are recorded under the association's row lock and only while they are current: the
token asked with must still be the stored one, and a "not approved" asked before an approval
was noticed is out of date. So two checks at once (the background run and the user's button)
record one approval and send one signal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from social_django.models import UserSocialAuth

from integrations.models import CredentialEvent
from integrations.providers.registry import backend_instance
from integrations.providers.registry import profile as provider_profile
from integrations.refreshing.single_flight import refresh_if_due
from integrations.signals import connection_approved
from integrations.store import crypto
from integrations.store.credentials import Status, read_credentials
from integrations.store.history import record_event
from integrations.store.writes import patch_association

logger = logging.getLogger(__name__)


def record_approval(
    association: UserSocialAuth, access_token: str, *, fallback_name: str = ""
) -> bool | None:
    """Ask the provider whether data access is approved and store the answer.

    Returns True (approved; `connection_approved` fires when this is the first sign of it),
    False (waiting for approval) or None (the provider could not tell right now, or the
    answer was out of date by the time it came; nothing changes).
    """
    asked_at = time.time()
    backend = backend_instance(association.provider)
    profile = provider_profile(association.provider)
    # Most providers grant access with the OAuth consent itself; Monzo also needs an
    # approval in its app.
    approved = profile.approval(backend, access_token) if profile.approval else True
    if approved is None:
        return None
    data = association.extra_data or {}
    waiting = data.get("status") == Status.AWAITING_APPROVAL
    name = ""
    if approved and (waiting or not data.get("display_name")):
        name = profile.account_name(backend, access_token) if profile.account_name else ""
        name = name or fallback_name
    return _record(
        association,
        access_token,
        approved=approved,
        asked_at=asked_at,
        tracked=profile.approval is not None,
        display_name=name,
    )


def check_again(association: UserSocialAuth) -> bool | None:
    """Re-check an association waiting for approval, with a fresh token (single flight).

    Raises what the refresh raises (ReauthRequired, RefreshFailed, CredentialsUnreadable,
    ProviderNotOffered)."""
    credentials = refresh_if_due(association)
    return record_approval(association, credentials.access_token)


def note_awaiting(
    association: UserSocialAuth, access_token: str, *, asked_at: float, code: str
) -> bool:
    """The provider's API answered a request made with `access_token` at `asked_at` that
    access must be approved (again): put the association back to awaiting approval, with a
    history entry naming the provider's `code`. Return whether that changed anything."""
    recorded = _record(
        association,
        access_token,
        approved=False,
        asked_at=asked_at,
        tracked=True,
        detail=f"the API answered {code}",
    )
    return recorded is False


def _record(
    association: UserSocialAuth,
    access_token: str,
    *,
    approved: bool,
    asked_at: float,
    tracked: bool,
    display_name: str = "",
    detail: str = "",
) -> bool | None:
    """Store one answer under the row lock, if still current; return it (None: not stored)."""
    first = False
    with transaction.atomic():
        row = UserSocialAuth.objects.select_for_update().filter(pk=association.pk).first()
        if row is None:
            return None  # disconnected meanwhile
        data = row.extra_data or {}
        association.extra_data = data
        if not _asked_with_current_token(data, access_token):
            return None
        was = data.get("status") or Status.ACTIVE
        if approved:
            first = tracked and not data.get("approved_at")
            patch: dict[str, Any] = {"status": Status.ACTIVE}
            if first:
                patch["approved_at"] = time.time()
            if display_name:
                patch["display_name"] = display_name
        else:
            if _noticed_since(data.get("approved_at"), asked_at):
                return None  # approval was seen after this question was asked
            patch = {"status": Status.AWAITING_APPROVAL, "approved_at": None}
        patch = {key: value for key, value in patch.items() if data.get(key) != value}
        if patch:
            patch_association(row, patch)
        if first:
            record_event(row, CredentialEvent.Kind.APPROVED)
        elif not approved and was != Status.AWAITING_APPROVAL:
            record_event(row, CredentialEvent.Kind.AWAITING_APPROVAL, detail=detail)
            logger.info(
                "Association %s (%s) awaits approval in the provider's app",
                row.pk, row.provider,
            )
    association.extra_data = row.extra_data
    if first:
        # After the commit (the login's whole pipeline is one transaction): receivers that
        # start a back-fill see the association as approved. A failing receiver is logged
        # and never undoes the approval.
        transaction.on_commit(
            lambda: connection_approved.send_robust(sender=row.provider, association=row)
        )
    return approved


def _asked_with_current_token(data: dict[str, Any], access_token: str) -> bool:
    """Whether an answer about `access_token` still speaks for the association: its token is
    still that one (a new login or refresh did not replace it) and it was not ended."""
    if data.get("status") == Status.REAUTH_REQUIRED:
        return False
    try:
        return read_credentials(data).access_token == access_token
    except crypto.DecryptionError:
        return False


def _noticed_since(approved_at: object, asked_at: float) -> bool:
    """Whether approval was noticed after the moment a question was asked (epoch seconds,
    with their fraction: an API call right after the login's check is not older than it)."""
    return isinstance(approved_at, (int, float)) and approved_at > asked_at
