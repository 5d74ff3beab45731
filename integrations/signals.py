"""Signals about stored credentials. Receivers get `sender` (the provider name) and
`association` (the UserSocialAuth row); none of them carries a token.

- ``credentials_refreshed``: new tokens were stored after a refresh.
- ``reauth_required``: the provider rejected the grant; the user must reconnect.
  Also sent with `reason` (the provider's error code).
"""

from django.dispatch import Signal

credentials_refreshed = Signal()
reauth_required = Signal()
