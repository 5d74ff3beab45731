"""In-app approval (Monzo's Strong Customer Authentication) as the login pipeline and the
pages use it. The work lives in integrations/refreshing/approval.py, which the background
run and get_session share: one place decides when approval is noticed, and the
`connection_approved` signal fires once per approval whichever of them notices it first."""

from __future__ import annotations

from integrations.refreshing.approval import check_again, record_approval

__all__ = ["check_again", "record_approval"]
