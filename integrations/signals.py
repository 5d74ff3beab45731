"""Signals about stored credentials. Receivers get `sender` (the provider name) and
`association` (the UserSocialAuth row); none of them carries a token.

- ``credentials_refreshed``: new tokens were stored after a refresh.
- ``reauth_required``: the provider rejected the grant; the user must reconnect.
  Also sent with `reason` (the provider's error code).
- ``connection_approved``: the user approved access in the provider's app (Monzo's Strong
  Customer Authentication) and the API now answers. Sent once per approval, at its first
  sign: the check right after login (when the account is approved already), "check again",
  or the background run (``manage.py refresh_tokens``, the Celery sweep), which re-checks
  every association awaiting approval; again after a new login or after the provider asked
  for approval anew. Sent after the approval is committed; a receiver that raises is logged
  and changes nothing. Monzo lets a client read the full transaction history only within
  5 minutes of authentication (then 90 days only), so site code that back-fills data should
  start from this signal.
"""

from django.dispatch import Signal

credentials_refreshed = Signal()
reauth_required = Signal()
connection_approved = Signal()
