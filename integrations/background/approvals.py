"""Re-check every association awaiting approval in the provider's app (Monzo's Strong
Customer Authentication) on each background run, so an approval given in the app is noticed
within one run without the user pressing anything (Monzo opens the full transaction history
only for 5 minutes after authentication).

Each check refreshes the token first when it is due (the single flight, so a refresh of the
same run or of web traffic is never repeated), takes the provider's rate-limit slot, asks the
provider once, and records the answer through integrations/refreshing/approval.py, which
fires `connection_approved` once per approval however many checks run at once.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable

from social_django.models import UserSocialAuth

from integrations.background.pool import run_all
from integrations.background.rate_limit import RateLimiter
from integrations.background.refresher import Summary
from integrations.exceptions import (
    CredentialsUnreadable,
    ProviderNotOffered,
    ReauthRequired,
    RefreshFailed,
)
from integrations.refreshing.approval import check_again
from integrations.store.credentials import Status

logger = logging.getLogger(__name__)


class ApprovalOutcome(enum.Enum):
    APPROVED = "approved"  # approval noticed just now: the association is active
    STILL_AWAITING = "still awaiting"  # the provider still says it is not approved
    NO_ANSWER = "no answer"  # the provider could not be asked (down, refresh failed)
    REAUTH_REQUIRED = "reauth required"  # the refresh found the grant gone
    SKIPPED = "skipped"  # no longer awaiting (noticed by someone else, or gone)
    ERROR = "error"  # an unexpected exception: a bug or the database


class ApprovalChecker:
    """Re-checks associations awaiting approval, by id; one instance may serve many threads."""

    def __init__(self, *, limiter: RateLimiter | None = None) -> None:
        self.limiter = limiter or RateLimiter({})

    def check(self, association_id: int) -> ApprovalOutcome:
        """Ask the provider once whether this association's access is approved now."""
        association = UserSocialAuth.objects.filter(pk=association_id).first()
        if association is None or not _awaiting(association):
            return ApprovalOutcome.SKIPPED
        self.limiter.acquire(association.provider)
        try:
            approved = check_again(association)
        except ProviderNotOffered:
            return ApprovalOutcome.SKIPPED
        except ReauthRequired:
            return ApprovalOutcome.REAUTH_REQUIRED
        except (RefreshFailed, CredentialsUnreadable) as error:
            logger.info("Approval of association %s not checked: %s", association_id, error)
            return ApprovalOutcome.NO_ANSWER
        if approved is None:
            # Not recorded: the provider could not tell, or another check answered first.
            return ApprovalOutcome.NO_ANSWER if _awaiting(association) else ApprovalOutcome.SKIPPED
        return ApprovalOutcome.APPROVED if approved else ApprovalOutcome.STILL_AWAITING


def check_all(
    association_ids: Iterable[int], checker: ApprovalChecker, *, concurrency: int = 8
) -> Summary:
    """Check every association on up to `concurrency` threads; return the counts."""
    return run_all(
        association_ids,
        lambda pk, _row: checker.check(pk),
        Summary(ApprovalOutcome),
        error=ApprovalOutcome.ERROR,
        concurrency=concurrency,
    )


def _awaiting(association: UserSocialAuth) -> bool:
    return (association.extra_data or {}).get("status") == Status.AWAITING_APPROVAL
